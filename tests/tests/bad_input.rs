//! Bad batches are refused with the right gRPC status and a message naming the problem, while a
//! healthy agent keeps streaming and nothing already accepted is lost.

use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{
    Batch, CollectorMessage, HostFacts, Label, MetricKind, REJECTED_SEQ_METADATA_KEY,
    RegisterRequest, SESSION_METADATA_KEY, SeriesDef, SeriesSamples,
};
use hcmon_tests::node::send_one_batch;
use hcmon_tests::now_ms;
use hcmon_tests::{Agent, Collector, points};
use std::time::Duration;
use tonic::{Code, Request, Status};

fn def(id: u32, name: &str) -> SeriesDef {
    SeriesDef {
        id,
        name: name.into(),
        labels: vec![],
        kind: MetricKind::Gauge as i32,
        help: "test".into(),
    }
}

fn batch(seq: u64, defs: Vec<SeriesDef>, id: u32, ts: i64, value: f64) -> Batch {
    Batch {
        seq,
        new_series: defs,
        samples: vec![SeriesSamples {
            series_id: id,
            timestamps_ms: vec![ts],
            values: vec![value],
        }],
        skipped_from: 0,
    }
}

/// Sends raw bytes as one message on the ingest stream, as a broken or hostile client would.
async fn send_raw(url: String, session: &str, bytes: Vec<u8>) -> Result<(), Status> {
    struct RawCodec;
    struct RawEncoder;
    impl tonic::codec::Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = Status;
        fn encode(
            &mut self,
            item: Vec<u8>,
            dst: &mut tonic::codec::EncodeBuf<'_>,
        ) -> Result<(), Status> {
            bytes::BufMut::put_slice(dst, &item);
            Ok(())
        }
    }
    type Prost = tonic_prost::ProstCodec<CollectorMessage, CollectorMessage>;
    impl tonic::codec::Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = CollectorMessage;
        type Encoder = RawEncoder;
        type Decoder = <Prost as tonic::codec::Codec>::Decoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> Self::Decoder {
            tonic::codec::Codec::decoder(&mut Prost::default())
        }
    }
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = Request::new(tokio_stream::iter(vec![bytes]));
    request
        .metadata_mut()
        .insert(SESSION_METADATA_KEY, session.parse().unwrap());
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/hcmon.v1.Ingest/Stream");
    let mut inbound = grpc.streaming(request, path, RawCodec).await?.into_inner();
    inbound.message().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_batches_get_clear_statuses_and_hurt_no_one_else() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let _healthy = Agent::start(
        &collector.grpc_url(),
        "healthy",
        &dir.path().join("spool"),
        "1s",
    );
    collector
        .wait_for_metrics(Duration::from_secs(30), |t| t.contains("node=\"healthy\""))
        .await?;

    let mut client = IngestClient::connect(collector.grpc_url()).await?;
    let session = client
        .register(RegisterRequest {
            node_name: "mallory".into(),
            spool_epoch: 42,
            ..Default::default()
        })
        .await?
        .into_inner()
        .session_id;

    // One good batch first: it must survive everything that follows.
    let good_ts = now_ms();
    assert_eq!(
        send_one_batch(
            &mut client,
            &session,
            batch(1, vec![def(1, "probe_value")], 1, good_ts, 7.0)
        )
        .await?,
        1
    );

    let far_future = now_ms() + 24 * 3600 * 1000;
    let huge_label = "x".repeat(1000);
    let oversized = Batch {
        seq: 2,
        new_series: (1..=5000)
            .map(|i| SeriesDef {
                labels: vec![Label {
                    name: "pad".into(),
                    value: huge_label.clone(),
                }],
                ..def(i, "padded")
            })
            .collect(),
        samples: vec![],
        skipped_from: 0,
    };
    let too_many = Batch {
        seq: 2,
        new_series: vec![def(1, "many")],
        samples: vec![SeriesSamples {
            series_id: 1,
            timestamps_ms: vec![now_ms(); 100_001],
            values: vec![1.0; 100_001],
        }],
        skipped_from: 0,
    };
    let cases: Vec<(&str, &str, Batch, Code, &str)> = vec![
        (
            "NaN value",
            &session,
            batch(2, vec![def(1, "nan_value")], 1, now_ms(), f64::NAN),
            Code::InvalidArgument,
            "NaN",
        ),
        (
            "Inf value",
            &session,
            batch(2, vec![def(1, "inf_value")], 1, now_ms(), f64::INFINITY),
            Code::InvalidArgument,
            "non-finite",
        ),
        (
            "future timestamp",
            &session,
            batch(2, vec![def(1, "future")], 1, far_future, 1.0),
            Code::InvalidArgument,
            "ahead of the collector's clock",
        ),
        (
            "ancient timestamp",
            &session,
            batch(2, vec![def(1, "ancient")], 1, 1_000, 1.0),
            Code::InvalidArgument,
            "behind the collector's clock",
        ),
        (
            "malformed name",
            &session,
            batch(2, vec![def(1, "bad name!")], 1, now_ms(), 1.0),
            Code::InvalidArgument,
            "metric name",
        ),
        (
            "unknown interned id",
            &session,
            batch(2, vec![], 77, now_ms(), 1.0),
            Code::FailedPrecondition,
            "series id 77 was never defined",
        ),
        (
            "oversized batch",
            &session,
            oversized,
            Code::ResourceExhausted,
            "over the limit of 4194304 bytes",
        ),
        (
            "too many samples",
            &session,
            too_many,
            Code::ResourceExhausted,
            "100001 samples",
        ),
        (
            "no session",
            "",
            batch(2, vec![def(1, "x")], 1, now_ms(), 1.0),
            Code::Unauthenticated,
            "Register",
        ),
    ];
    for (what, session, batch, code, needle) in cases {
        let status = send_one_batch(&mut client, session, batch)
            .await
            .expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{what}: {:?} lacks {needle:?}",
            status.message()
        );
        if code == Code::InvalidArgument || code == Code::ResourceExhausted {
            let seq = status
                .metadata()
                .get(REJECTED_SEQ_METADATA_KEY)
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(seq.as_deref(), Some("2"), "{what}: refused seq in metadata");
        }
    }

    let status = send_raw(collector.grpc_url(), &session, vec![0xff; 16])
        .await
        .expect_err("garbage");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("malformed AgentMessage"),
        "{status:?}"
    );

    // The healthy agent kept streaming through all of it.
    let before = collector
        .export("hcmon_agent_samples_total{node=\"healthy\"}")
        .await?;
    let before = points(&before[0]).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = collector
        .export("hcmon_agent_samples_total{node=\"healthy\"}")
        .await?;
    assert!(
        points(&after[0]).len() >= before + 2,
        "healthy agent stalled"
    );

    // Nothing accepted was lost, nothing refused was stored.
    let good = collector.export("probe_value{node=\"mallory\"}").await?;
    assert_eq!(points(&good[0]), vec![(good_ts, 7.0)]);
    for refused in ["nan_value", "future", "ancient", "many", "padded"] {
        assert!(
            collector.export(refused).await?.is_empty(),
            "{refused} was stored"
        );
    }
    let metrics = collector.get("/metrics").await?;
    assert!(
        metrics.contains("hcmon_collector_rejected_batches_total{reason=\"non_finite_value\"} 2"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_node_names_and_host_facts_are_refused_at_registration() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let mut client = IngestClient::connect(collector.grpc_url()).await?;
    let huge = "n".repeat(10 << 20);
    let long_fact = HostFacts {
        kernel_version: "6".repeat(100_000),
        ..Default::default()
    };
    let cases = [
        (huge.as_str(), HostFacts::default(), "longer than 253 bytes"),
        ("../../etc", HostFacts::default(), "only ASCII letters"),
        ("..", HostFacts::default(), "start with"),
        ("a/b", HostFacts::default(), "only ASCII letters"),
        ("nas\n", HostFacts::default(), "only ASCII letters"),
        ("nas", long_fact, "host.kernel_version is 100000 bytes"),
    ];
    for (name, host, needle) in cases {
        let status = client
            .register(RegisterRequest {
                node_name: name.into(),
                spool_epoch: 42,
                host: Some(host),
                ..Default::default()
            })
            .await
            .expect_err(needle);
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(needle),
            "{:.300}",
            status.message()
        );
        assert!(
            status.message().len() < 300,
            "the refused name is not echoed whole: {:.300}",
            status.message()
        );
    }
    let agents = collector.get("/api/v1/agents").await?;
    assert!(
        agents.contains("\"data\":[]"),
        "nothing was recorded: {agents:.300}"
    );
    Ok(())
}

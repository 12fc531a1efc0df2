//! Series creation through ingest: agents' definitions create series only with samples, and the
//! per-node and total series caps hold across streams and remote write.

use super::*;
use crate::catalog::CapExceeded;
use crate::storage::{MemoryKv, StorageConfig};
use hcmon_common::Selector;
use hcmon_proto::prometheus::{Label as WireLabel, Sample as WireSample, TimeSeries, WriteRequest};
use hcmon_proto::v1::{Label, MetricKind as WireKind, SeriesDef, SeriesSamples};

const NOW: i64 = 1_700_000_000_000;

fn service(limits: IngestLimits) -> Arc<IngestService> {
    let recovered = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default()).unwrap();
    IngestService::new(
        Arc::new(recovered.tsdb),
        Arc::new(SeriesCatalog::new(recovered.series)),
        recovered.nodes,
        Arc::new(CollectorMetrics::new()),
        Admission {
            limits,
            ..Default::default()
        },
        Arc::new(|| NOW),
        Default::default(),
    )
}

async fn connect(svc: &Arc<IngestService>, node: &str) -> IngestStream {
    let resp = svc
        .register(
            RegisterRequest {
                node_name: node.into(),
                spool_epoch: 7,
                ..Default::default()
            },
            &PeerIdentity::Plaintext,
        )
        .await
        .unwrap();
    svc.open_stream(Some(&resp.session_id), &PeerIdentity::Plaintext)
        .unwrap()
}

/// A gauge `name{disk="<disk>"}` defined as wire id `id`.
fn def(id: u32, name: &str, disk: &str) -> SeriesDef {
    SeriesDef {
        id,
        name: name.into(),
        labels: vec![Label {
            name: "disk".into(),
            value: disk.into(),
        }],
        kind: WireKind::Gauge as i32,
        help: format!("Help of {name}."),
    }
}

fn sample(id: u32, value: f64) -> SeriesSamples {
    SeriesSamples {
        series_id: id,
        timestamps_ms: vec![NOW - 1000],
        values: vec![value],
    }
}

fn batch(seq: u64, new_series: Vec<SeriesDef>, samples: Vec<SeriesSamples>) -> Batch {
    Batch {
        seq,
        new_series,
        samples,
        ..Default::default()
    }
}

fn names(svc: &IngestService) -> Vec<String> {
    svc.catalog
        .all()
        .iter()
        .map(|m| m.labels.to_string())
        .collect()
}

fn rejected(svc: &IngestService, reason: &str) -> u64 {
    svc.metrics
        .rejected_batches
        .with_label_values(&[reason])
        .get()
}

#[tokio::test]
async fn a_definition_creates_its_series_only_with_a_sample() {
    let svc = service(IngestLimits::default());
    let mut stream = connect(&svc, "nas").await;
    let first = batch(
        1,
        vec![def(1, "used", "sda"), def(2, "used", "sdb")],
        vec![sample(1, 0.5)],
    );
    assert_eq!(svc.ingest(&mut stream, first).await.unwrap(), 1);
    assert_eq!(
        names(&svc),
        vec![r#"used{disk="sda",instance="nas",job="node",node="nas"}"#]
    );

    // Its first sample, batches later, creates the other, with the help it was defined with.
    svc.ingest(&mut stream, batch(2, vec![], vec![sample(2, 0.7)]))
        .await
        .unwrap();
    let sdb = svc
        .catalog
        .select(&Selector::parse(r#"used{disk="sdb"}"#).unwrap());
    assert_eq!(sdb.len(), 1);
    assert_eq!(sdb[0].help, "Help of used.");
    assert_eq!(
        svc.tsdb.read_raw(sdb[0].id, 0, NOW).unwrap(),
        vec![(NOW - 1000, 0.7)]
    );

    // A resend (already durable) stores no samples, so it creates nothing either; the
    // definitions it carries still serve later batches of the new stream.
    drop(stream);
    let mut stream = connect(&svc, "nas").await;
    let resend = batch(2, vec![def(5, "free", "sdc")], vec![sample(5, 1.0)]);
    assert_eq!(svc.ingest(&mut stream, resend).await.unwrap(), 2);
    assert_eq!(svc.catalog.len(), 2);
    svc.ingest(&mut stream, batch(3, vec![], vec![sample(5, 2.0)]))
        .await
        .unwrap();
    assert_eq!(svc.catalog.len(), 3);
}

#[tokio::test]
async fn series_caps_hold_per_node_across_streams_and_remote_write_and_in_all() {
    let svc = service(IngestLimits {
        max_series_per_agent: 3,
        max_series: 6,
        ..IngestLimits::default()
    });
    let mut stream = connect(&svc, "a").await;
    let two = batch(
        1,
        vec![def(1, "used", "sda"), def(2, "used", "sdb")],
        vec![sample(1, 1.0), sample(2, 1.0)],
    );
    svc.ingest(&mut stream, two).await.unwrap();

    // A new stream of the same node does not start counting afresh.
    drop(stream);
    let mut stream = connect(&svc, "a").await;
    let two_more = batch(
        2,
        vec![def(1, "used", "sdc"), def(2, "used", "sdd")],
        vec![sample(1, 1.0), sample(2, 1.0)],
    );
    let err = svc.ingest(&mut stream, two_more).await.unwrap_err();
    assert_eq!(err.refusal(), Refusal::OverLimit);
    assert_eq!(
        err.to_string(),
        "batch 2: node \"a\" would have 4 series, over the limit of 3 per node; if it really has \
         that many, raise `limits.max_series_per_agent` in the collector's config"
    );
    assert_eq!(svc.catalog.len(), 2, "a refused batch creates nothing");
    assert_eq!(rejected(&svc, "node_series_limit"), 1);

    // Remote-written series labelled with the node count towards it too: one more fits.
    let series = |name: &str, node: &str| TimeSeries {
        labels: [("__name__", name), ("node", node)]
            .iter()
            .map(|(n, v)| WireLabel {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: vec![WireSample {
            value: 1.0,
            timestamp: NOW,
        }],
    };
    let body = |timeseries| {
        let raw = prost::Message::encode_to_vec(&WriteRequest { timeseries });
        snap::raw::Encoder::new().compress_vec(&raw).unwrap()
    };
    let err = svc
        .remote_write(
            crate::ingest::Protocol::V1,
            &body(vec![series("rw1", "a"), series("rw2", "a")]),
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            RemoteWriteError::OverCap { refused, samples: 1 }
                if refused.series == 1
                    && matches!(refused.cap, CapExceeded::PerNode { ref node, .. } if node == "a")
        ),
        "{err}"
    );
    assert_eq!(svc.catalog.len(), 3);

    // Node b takes the collector to its total of 6; node c finds no room left.
    let mut b = connect(&svc, "b").await;
    let three = batch(
        1,
        vec![def(1, "x", "1"), def(2, "x", "2"), def(3, "x", "3")],
        vec![sample(1, 1.0), sample(2, 1.0), sample(3, 1.0)],
    );
    svc.ingest(&mut b, three).await.unwrap();
    let mut c = connect(&svc, "c").await;
    let err = svc
        .ingest(
            &mut c,
            batch(1, vec![def(1, "x", "1")], vec![sample(1, 1.0)]),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the collector would hold 7 series, over its limit of 6 in all"),
        "{err}"
    );
    assert!(err.to_string().contains("`limits.max_series`"), "{err}");
    assert_eq!(rejected(&svc, "total_series_limit"), 1);
    assert_eq!(svc.catalog.len(), 6);

    // Series that exist keep flowing at the caps.
    svc.ingest(&mut b, batch(2, vec![], vec![sample(1, 2.0)]))
        .await
        .unwrap();
}

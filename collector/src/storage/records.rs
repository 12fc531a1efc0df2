//! The records the engine stores in `series`, `nodes`, `node_sequences` and `meta`: types of
//! their own, apart from the in-memory ones, with conversions both ways, so an in-memory type
//! can change without changing what is on disk.
//!
//! # Format
//! Values are JSON, each written as `{"format": 1, "record": …}`. A value without that envelope
//! is a format-1 record written before formats were marked; a `meta` value that does not start
//! with `{` is the binary layout written before (see each meta record's `decode_legacy`; such a
//! value starts with the high byte of a big-endian id, never `{`). A format this version does not
//! know was written by a newer hcmon: unreadable here.
//!
//! # Changing a record
//! - A field added later is `#[serde(default)]`, so a record written without it still reads;
//!   the format stays.
//! - Unknown fields are ignored: a record written by a newer version that only added fields
//!   still reads after a downgrade. Refusing them would buy nothing, since a change an older
//!   version would misread (a field renamed, retyped or given a new meaning) must be a new
//!   record type under a new format number, which older versions refuse instead of misreading.
//! - No record has a field named `format`: that name tells an envelope from a bare record.

use super::kv::Table;
use super::rollup::Resolution;
use super::{
    FamilyMeta, FamilyType, HostInfo, MetricKind, NodeRecord, NodeSequence, SeriesId, SeriesMeta,
    StoreError,
};
use hcmon_common::Labels;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The format this version writes (see the module header).
const FORMAT: u64 = 1;

/// A stored record: where it lives and how it is written and read.
pub(super) trait Record: Serialize + DeserializeOwned {
    /// The table it is stored in, named by its corruption errors.
    const TABLE: Table;
    /// What it is, named by its corruption errors.
    const WHAT: &'static str;

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&Envelope {
            format: FORMAT,
            record: self,
        })
        .expect("records serialize")
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        decode_json(bytes)
    }
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    format: u64,
    record: &'a T,
}

/// Just the format marker of a value, the rest skipped.
#[derive(Deserialize)]
struct Marker {
    format: Option<u64>,
}

#[derive(Deserialize)]
struct Enveloped<T> {
    record: T,
}

fn corrupt<R: Record>(detail: impl Into<String>) -> StoreError {
    StoreError::corrupt(R::TABLE, R::WHAT, detail)
}

/// A JSON value, enveloped or bare (see the module header).
fn decode_json<R: Record>(bytes: &[u8]) -> Result<R, StoreError> {
    let marker: Marker = serde_json::from_slice(bytes)
        .map_err(|e| corrupt::<R>(format!("not a JSON record: {e}")))?;
    match marker.format {
        None => serde_json::from_slice(bytes),
        Some(FORMAT) => serde_json::from_slice::<Enveloped<R>>(bytes).map(|e| e.record),
        Some(format) => {
            return Err(corrupt::<R>(format!(
                "format {format} is not one this version reads ({FORMAT}); written by a newer hcmon?"
            )));
        }
    }
    .map_err(|e| corrupt::<R>(e.to_string()))
}

/// A `meta` value: JSON when it starts with `{`, else the legacy binary layout.
fn decode_meta<R: Record>(
    bytes: &[u8],
    legacy: impl FnOnce(&[u8]) -> Result<R, String>,
) -> Result<R, StoreError> {
    if bytes.first() == Some(&b'{') {
        decode_json(bytes)
    } else {
        legacy(bytes).map_err(|detail| corrupt::<R>(format!("legacy layout: {detail}")))
    }
}

/// A `series` value (its key is the series id).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct SeriesRecordV1 {
    /// The label set as `Labels::encode` writes it.
    labels: String,
    kind: MetricKindV1,
    help: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MetricKindV1 {
    Gauge,
    Counter,
}

impl Record for SeriesRecordV1 {
    const TABLE: Table = Table::Series;
    const WHAT: &'static str = "series record";
}

impl From<&SeriesMeta> for SeriesRecordV1 {
    fn from(meta: &SeriesMeta) -> Self {
        Self {
            labels: String::from_utf8(meta.labels.encode()).expect("labels are UTF-8"),
            kind: match meta.kind {
                MetricKind::Gauge => MetricKindV1::Gauge,
                MetricKind::Counter => MetricKindV1::Counter,
            },
            help: meta.help.clone(),
        }
    }
}

impl SeriesRecordV1 {
    /// The series it describes; `id` comes from its key.
    pub(super) fn into_meta(self, id: SeriesId) -> Result<SeriesMeta, StoreError> {
        let labels = Labels::decode(self.labels.as_bytes())
            .ok_or_else(|| corrupt::<Self>(format!("labels of series {}", id.0)))?;
        Ok(SeriesMeta {
            id,
            labels,
            kind: match self.kind {
                MetricKindV1::Gauge => MetricKind::Gauge,
                MetricKindV1::Counter => MetricKind::Counter,
            },
            help: self.help,
        })
    }
}

/// A `families` value (its key is the family name).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct FamilyRecordV1 {
    kind: FamilyTypeV1,
    #[serde(default)]
    help: String,
    #[serde(default)]
    unit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FamilyTypeV1 {
    Unknown,
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
}

impl Record for FamilyRecordV1 {
    const TABLE: Table = Table::Families;
    const WHAT: &'static str = "metric family record";
}

impl From<&FamilyMeta> for FamilyRecordV1 {
    fn from(meta: &FamilyMeta) -> Self {
        Self {
            kind: match meta.kind {
                FamilyType::Unknown => FamilyTypeV1::Unknown,
                FamilyType::Counter => FamilyTypeV1::Counter,
                FamilyType::Gauge => FamilyTypeV1::Gauge,
                FamilyType::Histogram => FamilyTypeV1::Histogram,
                FamilyType::GaugeHistogram => FamilyTypeV1::GaugeHistogram,
                FamilyType::Summary => FamilyTypeV1::Summary,
                FamilyType::Info => FamilyTypeV1::Info,
                FamilyType::StateSet => FamilyTypeV1::StateSet,
            },
            help: meta.help.clone(),
            unit: meta.unit.clone(),
        }
    }
}

impl From<FamilyRecordV1> for FamilyMeta {
    fn from(record: FamilyRecordV1) -> Self {
        Self {
            kind: match record.kind {
                FamilyTypeV1::Unknown => FamilyType::Unknown,
                FamilyTypeV1::Counter => FamilyType::Counter,
                FamilyTypeV1::Gauge => FamilyType::Gauge,
                FamilyTypeV1::Histogram => FamilyType::Histogram,
                FamilyTypeV1::GaugeHistogram => FamilyType::GaugeHistogram,
                FamilyTypeV1::Summary => FamilyType::Summary,
                FamilyTypeV1::Info => FamilyType::Info,
                FamilyTypeV1::StateSet => FamilyType::StateSet,
            },
            help: record.help,
            unit: record.unit,
        }
    }
}

/// A `nodes` value (its key is the node name).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct NodeRecordV1 {
    spool_epoch: u64,
    last_durable_seq: u64,
    /// Absent in records written before it was kept: read as 0.
    #[serde(default)]
    durable_from: u64,
    /// Absent in records written before it was kept: read as 0.
    #[serde(default)]
    lost_batches: u64,
    agent_version: String,
    host: HostRecordV1,
    registered_at_ms: i64,
    last_batch_at_ms: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct HostRecordV1 {
    hostname: String,
    os_name: String,
    os_version: String,
    kernel_version: String,
    arch: String,
    cpu_count: u32,
    memory_total_bytes: u64,
    boot_time: u64,
}

impl Record for NodeRecordV1 {
    const TABLE: Table = Table::Nodes;
    const WHAT: &'static str = "node record";
}

impl From<&NodeRecord> for NodeRecordV1 {
    fn from(r: &NodeRecord) -> Self {
        let h = &r.host;
        Self {
            spool_epoch: r.spool_epoch,
            last_durable_seq: r.last_durable_seq,
            durable_from: r.durable_from,
            lost_batches: r.lost_batches,
            agent_version: r.agent_version.clone(),
            host: HostRecordV1 {
                hostname: h.hostname.clone(),
                os_name: h.os_name.clone(),
                os_version: h.os_version.clone(),
                kernel_version: h.kernel_version.clone(),
                arch: h.arch.clone(),
                cpu_count: h.cpu_count,
                memory_total_bytes: h.memory_total_bytes,
                boot_time: h.boot_time,
            },
            registered_at_ms: r.registered_at_ms,
            last_batch_at_ms: r.last_batch_at_ms,
        }
    }
}

impl From<NodeRecordV1> for NodeRecord {
    fn from(r: NodeRecordV1) -> Self {
        let h = r.host;
        Self {
            spool_epoch: r.spool_epoch,
            last_durable_seq: r.last_durable_seq,
            durable_from: r.durable_from,
            lost_batches: r.lost_batches,
            agent_version: r.agent_version,
            host: HostInfo {
                hostname: h.hostname,
                os_name: h.os_name,
                os_version: h.os_version,
                kernel_version: h.kernel_version,
                arch: h.arch,
                cpu_count: h.cpu_count,
                memory_total_bytes: h.memory_total_bytes,
                boot_time: h.boot_time,
            },
            registered_at_ms: r.registered_at_ms,
            last_batch_at_ms: r.last_batch_at_ms,
        }
    }
}

/// A `node_sequences` value (its key is the node name).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct NodeSequenceRecordV1 {
    spool_epoch: u64,
    last_durable_seq: u64,
    durable_from: u64,
    lost_batches: u64,
    last_batch_at_ms: i64,
}

impl Record for NodeSequenceRecordV1 {
    const TABLE: Table = Table::NodeSequences;
    const WHAT: &'static str = "node sequence record";
}

impl From<&NodeSequence> for NodeSequenceRecordV1 {
    fn from(s: &NodeSequence) -> Self {
        Self {
            spool_epoch: s.spool_epoch,
            last_durable_seq: s.last_durable_seq,
            durable_from: s.durable_from,
            lost_batches: s.lost_batches,
            last_batch_at_ms: s.last_batch_at_ms,
        }
    }
}

impl From<NodeSequenceRecordV1> for NodeSequence {
    fn from(s: NodeSequenceRecordV1) -> Self {
        Self {
            spool_epoch: s.spool_epoch,
            last_durable_seq: s.last_durable_seq,
            durable_from: s.durable_from,
            lost_batches: s.lost_batches,
            last_batch_at_ms: s.last_batch_at_ms,
        }
    }
}

/// `meta` `checkpoint`: the last WAL write id the checkpoint covers.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct CheckpointRecordV1 {
    pub(super) wal_position: u64,
}

impl Record for CheckpointRecordV1 {
    const TABLE: Table = Table::Meta;
    const WHAT: &'static str = "checkpoint record";

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        decode_meta(bytes, Self::decode_legacy)
    }
}

impl CheckpointRecordV1 {
    /// The position as a big-endian u64.
    fn decode_legacy(bytes: &[u8]) -> Result<Self, String> {
        let position: [u8; 8] = bytes
            .try_into()
            .map_err(|_| format!("{} bytes, not 8", bytes.len()))?;
        Ok(Self {
            wal_position: u64::from_be_bytes(position),
        })
    }
}

/// `meta` `raw_rollups`: the first day whose 1 min and 5 min buckets reads compute from raw
/// samples; those of the days before it are stored.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct RawRollupsRecordV1 {
    pub(super) computed_from_day: u32,
}

impl Record for RawRollupsRecordV1 {
    const TABLE: Table = Table::Meta;
    const WHAT: &'static str = "raw rollups record";
}

/// `meta` `minute_rollups`, in stores from before 5 min buckets were computed from raw: the
/// first day whose 1 min buckets reads compute from raw samples (5 min ones were all stored).
/// Read once, when such a store opens, and replaced by a [`RawRollupsRecordV1`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct MinuteRollupsRecordV1 {
    pub(super) computed_from_day: u32,
}

impl Record for MinuteRollupsRecordV1 {
    const TABLE: Table = Table::Meta;
    const WHAT: &'static str = "minute rollups record";
}

/// `meta` `wal_reader/<name>`: the last WAL id a durable reader finished.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct WalReaderRecordV1 {
    pub(super) position: u64,
}

impl Record for WalReaderRecordV1 {
    const TABLE: Table = Table::Meta;
    const WHAT: &'static str = "WAL reader record";
}

/// `meta` `deleted_series`: ids of deleted series.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct DeletedSeriesRecordV1 {
    /// Ascending.
    ids: Vec<u64>,
}

impl Record for DeletedSeriesRecordV1 {
    const TABLE: Table = Table::Meta;
    const WHAT: &'static str = "deleted-series record";

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        decode_meta(bytes, Self::decode_legacy)
    }
}

impl DeletedSeriesRecordV1 {
    pub(super) fn of(ids: impl IntoIterator<Item = SeriesId>) -> Self {
        let mut ids: Vec<u64> = ids.into_iter().map(|id| id.0).collect();
        ids.sort_unstable();
        Self { ids }
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = SeriesId> + '_ {
        self.ids.iter().map(|&id| SeriesId(id))
    }

    /// Big-endian u64s, one after the other.
    fn decode_legacy(bytes: &[u8]) -> Result<Self, String> {
        let (ids, rest) = bytes.as_chunks::<8>();
        if !rest.is_empty() {
            return Err(format!("{} bytes, not a multiple of 8", bytes.len()));
        }
        Ok(Self {
            ids: ids.iter().map(|id| u64::from_be_bytes(*id)).collect(),
        })
    }
}

/// `meta` `stale_rollups`: rollup buckets to recompute from raw samples.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct StaleRollupsRecordV1 {
    buckets: Vec<StaleBucketV1>,
}

/// Series id, resolution, bucket start (ms): an array, as there may be many.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct StaleBucketV1(u64, ResolutionV1, i64);

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum ResolutionV1 {
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
}

impl From<Resolution> for ResolutionV1 {
    fn from(res: Resolution) -> Self {
        match res {
            Resolution::OneMinute => ResolutionV1::OneMinute,
            Resolution::FiveMinutes => ResolutionV1::FiveMinutes,
            Resolution::OneHour => ResolutionV1::OneHour,
        }
    }
}

impl From<ResolutionV1> for Resolution {
    fn from(res: ResolutionV1) -> Self {
        match res {
            ResolutionV1::OneMinute => Resolution::OneMinute,
            ResolutionV1::FiveMinutes => Resolution::FiveMinutes,
            ResolutionV1::OneHour => Resolution::OneHour,
        }
    }
}

impl Record for StaleRollupsRecordV1 {
    const TABLE: Table = Table::Meta;
    const WHAT: &'static str = "stale-rollups record";

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        decode_meta(bytes, Self::decode_legacy)
    }
}

impl StaleRollupsRecordV1 {
    pub(super) fn of(stale: &[(SeriesId, Resolution, i64)]) -> Self {
        Self {
            buckets: stale
                .iter()
                .map(|&(series, res, bucket)| StaleBucketV1(series.0, res.into(), bucket))
                .collect(),
        }
    }

    pub(super) fn buckets(&self) -> impl Iterator<Item = (SeriesId, Resolution, i64)> + '_ {
        self.buckets
            .iter()
            .map(|&StaleBucketV1(series, res, bucket)| (SeriesId(series), res.into(), bucket))
    }

    /// 17 bytes per bucket: series id (u64 BE), resolution index (u8), bucket start (i64 BE).
    fn decode_legacy(bytes: &[u8]) -> Result<Self, String> {
        let (entries, rest) = bytes.as_chunks::<17>();
        if !rest.is_empty() {
            return Err(format!("{} bytes, not a multiple of 17", bytes.len()));
        }
        let buckets = entries
            .iter()
            .map(|e| {
                let (series, rest) = e.split_first_chunk::<8>().expect("17 bytes");
                let (&res, bucket) = rest.split_first().expect("9 bytes");
                let res = *Resolution::ALL
                    .get(usize::from(res))
                    .ok_or_else(|| format!("resolution index {res}"))?;
                let bucket: [u8; 8] = bucket.try_into().expect("8 bytes");
                Ok(StaleBucketV1(
                    u64::from_be_bytes(*series),
                    res.into(),
                    i64::from_be_bytes(bucket),
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { buckets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values written before records had a format marker, byte for byte.
    const SERIES_BARE: &[u8] = br#"{"labels":"__name__\u0000cpu_seconds_total\u0000node\u0000nas\u0000","kind":"counter","help":"CPU time."}"#;
    const NODE_BARE: &[u8] = br#"{"spool_epoch":7,"last_durable_seq":42,"durable_from":3,"lost_batches":1,"agent_version":"0.1.0","host":{"hostname":"nas","os_name":"Debian","os_version":"13","kernel_version":"6.12","arch":"x86_64","cpu_count":4,"memory_total_bytes":8,"boot_time":9},"registered_at_ms":1,"last_batch_at_ms":2}"#;
    const SEQUENCE_BARE: &[u8] = br#"{"spool_epoch":7,"last_durable_seq":43,"durable_from":3,"lost_batches":1,"last_batch_at_ms":5}"#;

    fn node() -> NodeRecord {
        NodeRecordV1::decode(NODE_BARE).unwrap().into()
    }

    #[test]
    fn records_written_before_the_format_marker_read() {
        let meta = SeriesRecordV1::decode(SERIES_BARE)
            .unwrap()
            .into_meta(SeriesId(3))
            .unwrap();
        assert_eq!(meta.id, SeriesId(3));
        assert_eq!(meta.labels.metric_name(), "cpu_seconds_total");
        assert_eq!(
            (meta.kind, meta.help.as_str()),
            (MetricKind::Counter, "CPU time.")
        );
        // The bytes today's code wrote are what the record serialises to, bare.
        let bare = serde_json::to_vec(&SeriesRecordV1::from(&meta)).unwrap();
        assert_eq!(bare, SERIES_BARE);

        let node = node();
        assert_eq!(
            (node.spool_epoch, node.durable_from, node.lost_batches),
            (7, 3, 1)
        );
        assert_eq!(
            (node.host.os_name.as_str(), node.host.boot_time),
            ("Debian", 9)
        );
        assert_eq!(
            serde_json::to_vec(&NodeRecordV1::from(&node)).unwrap(),
            NODE_BARE
        );

        let sequence: NodeSequence = NodeSequenceRecordV1::decode(SEQUENCE_BARE).unwrap().into();
        assert_eq!(
            (sequence.last_durable_seq, sequence.last_batch_at_ms),
            (43, 5)
        );

        // Meta values were binary.
        let checkpoint = CheckpointRecordV1::decode(&42u64.to_be_bytes()).unwrap();
        assert_eq!(checkpoint.wal_position, 42);
        let deleted: Vec<u8> = [3u64, 9].iter().flat_map(|id| id.to_be_bytes()).collect();
        let deleted = DeletedSeriesRecordV1::decode(&deleted).unwrap();
        assert_eq!(
            deleted.ids().collect::<Vec<_>>(),
            [SeriesId(3), SeriesId(9)]
        );
        let mut stale = 5u64.to_be_bytes().to_vec();
        stale.push(1);
        stale.extend_from_slice(&(-300_000i64).to_be_bytes());
        let stale = StaleRollupsRecordV1::decode(&stale).unwrap();
        assert_eq!(
            stale.buckets().collect::<Vec<_>>(),
            [(SeriesId(5), Resolution::FiveMinutes, -300_000)]
        );
    }

    #[test]
    fn an_older_node_record_lacking_later_fields_reads_them_as_zero() {
        let old = br#"{"spool_epoch":7,"last_durable_seq":42,"agent_version":"0.1.0","host":{"hostname":"nas","os_name":"","os_version":"","kernel_version":"","arch":"","cpu_count":4,"memory_total_bytes":0,"boot_time":0},"registered_at_ms":1,"last_batch_at_ms":2}"#;
        let node: NodeRecord = NodeRecordV1::decode(old).unwrap().into();
        assert_eq!(
            (node.last_durable_seq, node.durable_from, node.lost_batches),
            (42, 0, 0)
        );
    }

    #[test]
    fn new_records_carry_the_format_and_round_trip() {
        let node = node();
        let bytes = NodeRecordV1::from(&node).encode();
        assert!(bytes.starts_with(br#"{"format":1,"record":{"#), "{bytes:?}");
        assert_eq!(
            NodeRecord::from(NodeRecordV1::decode(&bytes).unwrap()),
            node
        );

        let sequence = node.sequence();
        let bytes = NodeSequenceRecordV1::from(&sequence).encode();
        let back: NodeSequence = NodeSequenceRecordV1::decode(&bytes).unwrap().into();
        assert_eq!(back, sequence);

        let meta = SeriesRecordV1::decode(SERIES_BARE)
            .unwrap()
            .into_meta(SeriesId(3))
            .unwrap();
        let bytes = SeriesRecordV1::from(&meta).encode();
        assert_eq!(
            SeriesRecordV1::decode(&bytes)
                .unwrap()
                .into_meta(SeriesId(3))
                .unwrap(),
            meta
        );

        let bytes = CheckpointRecordV1 { wal_position: 9 }.encode();
        assert_eq!(&bytes, br#"{"format":1,"record":{"wal_position":9}}"#);
        assert_eq!(CheckpointRecordV1::decode(&bytes).unwrap().wal_position, 9);
        let deleted = DeletedSeriesRecordV1::of([SeriesId(9), SeriesId(2)]);
        assert_eq!(&deleted.encode(), br#"{"format":1,"record":{"ids":[2,9]}}"#);
        assert_eq!(
            DeletedSeriesRecordV1::decode(&deleted.encode()).unwrap(),
            deleted
        );
        let stale = StaleRollupsRecordV1::of(&[(SeriesId(4), Resolution::OneHour, 3_600_000)]);
        assert_eq!(
            &stale.encode(),
            br#"{"format":1,"record":{"buckets":[[4,"1h",3600000]]}}"#
        );
        assert_eq!(
            StaleRollupsRecordV1::decode(&stale.encode()).unwrap(),
            stale
        );
    }

    #[test]
    fn unknown_fields_of_a_newer_version_are_ignored() {
        let newer = br#"{"format":1,"record":{"spool_epoch":7,"last_durable_seq":43,"durable_from":3,"lost_batches":1,"last_batch_at_ms":5,"resumed_at_ms":6}}"#;
        let sequence: NodeSequence = NodeSequenceRecordV1::decode(newer).unwrap().into();
        assert_eq!(sequence.last_durable_seq, 43);
        let bare_with_extra =
            br#"{"labels":"__name__\u0000up\u0000","kind":"gauge","help":"","unit":"seconds"}"#;
        let meta = SeriesRecordV1::decode(bare_with_extra)
            .unwrap()
            .into_meta(SeriesId(1))
            .unwrap();
        assert_eq!(meta.labels.metric_name(), "up");
        let checkpoint = br#"{"format":1,"record":{"wal_position":9,"written_at_ms":1},"crc":0}"#;
        assert_eq!(
            CheckpointRecordV1::decode(checkpoint).unwrap().wal_position,
            9
        );
    }

    #[test]
    fn family_records_keep_every_declared_type() {
        for kind in [
            FamilyType::Unknown,
            FamilyType::Counter,
            FamilyType::Gauge,
            FamilyType::Histogram,
            FamilyType::GaugeHistogram,
            FamilyType::Summary,
            FamilyType::Info,
            FamilyType::StateSet,
        ] {
            let meta = FamilyMeta {
                kind,
                help: "Help.".into(),
                unit: "seconds".into(),
            };
            let bytes = FamilyRecordV1::from(&meta).encode();
            assert_eq!(
                FamilyMeta::from(FamilyRecordV1::decode(&bytes).unwrap()),
                meta
            );
        }
        // The stored spelling is the format: a newer version reads this one.
        let written = br#"{"format":1,"record":{"kind":"gaugehistogram","help":"","unit":""}}"#;
        let meta = FamilyMeta::from(FamilyRecordV1::decode(written).unwrap());
        assert_eq!(meta.kind, FamilyType::GaugeHistogram);
    }

    #[test]
    fn unreadable_values_are_corruption_naming_the_table() {
        fn check<R: Record + std::fmt::Debug>(bytes: &[u8], expected: &str) {
            match R::decode(bytes) {
                Err(StoreError::Corrupt {
                    table,
                    what,
                    detail,
                }) => {
                    assert_eq!((table, what), (R::TABLE, R::WHAT));
                    assert!(detail.contains(expected), "{detail:?} lacks {expected:?}");
                }
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        check::<SeriesRecordV1>(b"{not json", "not a JSON record");
        check::<SeriesRecordV1>(
            br#"{"labels":"up","kind":"histogram","help":""}"#,
            "histogram",
        );
        check::<NodeRecordV1>(br#"{"format":2,"record":{}}"#, "format 2");
        check::<NodeRecordV1>(
            br#"{"format":1,"record":{"spool_epoch":1}}"#,
            "missing field",
        );
        check::<NodeSequenceRecordV1>(b"\xff", "not a JSON record");
        check::<NodeSequenceRecordV1>(b"[]", "not a JSON record");
        check::<CheckpointRecordV1>(&[0, 1, 2], "3 bytes, not 8");
        check::<CheckpointRecordV1>(b"{\"format\":1}", "missing field `record`");
        check::<DeletedSeriesRecordV1>(&[0; 9], "not a multiple of 8");
        check::<StaleRollupsRecordV1>(&[0; 18], "not a multiple of 17");
        check::<StaleRollupsRecordV1>(&[7; 17], "resolution index 7");
        let bad_labels =
            SeriesRecordV1::decode(br#"{"labels":"__name__","kind":"gauge","help":""}"#)
                .unwrap()
                .into_meta(SeriesId(8))
                .unwrap_err();
        assert!(
            bad_labels.to_string().contains("series table"),
            "{bad_labels}"
        );
    }
}

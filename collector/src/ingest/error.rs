//! Why an agent's request was refused. Mapped to gRPC statuses in one place: `grpc.rs`.

use crate::storage::StoreError;
use hcmon_common::LabelError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("registration refused: node_name is empty")]
    EmptyNodeName,
    #[error("registration refused: node_name {0:?} is invalid (1-253 printable characters)")]
    InvalidNodeName(String),
    #[error("registration refused: the agent token does not match the collector's")]
    BadToken,
    #[error("no `hcmon-session` metadata: call Register first")]
    MissingSession,
    #[error("unknown or expired session: call Register again (the collector may have restarted)")]
    UnknownSession,
    #[error(
        "another agent registered node {node:?} with a different spool since this stream began (do two agents share this node name?); register again"
    )]
    SessionReplaced { node: String },
    #[error(
        "batch {seq}: series id {id} uses the reserved metric name {name:?} (prefixes hcmon_collector_ and process_ belong to the collector)"
    )]
    ReservedName { seq: u64, id: u32, name: String },
    #[error("batch {seq}: {message}")]
    KindConflict { seq: u64, message: String },
    #[error("malformed AgentMessage: not valid hcmon.v1 protobuf ({detail})")]
    Malformed { detail: String },
    #[error("message over the collector's decode limit ({detail})")]
    OverDecodeLimit { detail: String },
    #[error("empty AgentMessage: expected a batch (is the agent newer than the collector?)")]
    EmptyMessage,
    #[error("batch seq must be 1 or greater, got 0")]
    ZeroSequence,
    #[error("batch {seq} is {bytes} bytes encoded, over the limit of {max} bytes")]
    BatchTooLarge { seq: u64, bytes: usize, max: usize },
    #[error("batch {seq} has {count} samples, over the limit of {max} per batch")]
    TooManySamples { seq: u64, count: usize, max: usize },
    #[error("batch {seq} would bring this agent to {count} series, over the limit of {max}")]
    TooManySeries { seq: u64, count: usize, max: usize },
    #[error("batch {seq}: series id {id} ({name}) has {count} labels, over the limit of {max}")]
    TooManyLabels {
        seq: u64,
        id: u32,
        name: String,
        count: usize,
        max: usize,
    },
    #[error(
        "batch {seq}: series id {id} ({name}) has label {label:?} with a value of {len} bytes, over the limit of {max}"
    )]
    LabelValueTooLong {
        seq: u64,
        id: u32,
        name: String,
        label: String,
        len: usize,
        max: usize,
    },
    #[error("batch {seq}: series id {id} is defined twice on this stream")]
    DuplicateSeriesId { seq: u64, id: u32 },
    #[error("batch {seq}: series id {id} has an invalid definition: {source}")]
    InvalidSeries {
        seq: u64,
        id: u32,
        source: LabelError,
    },
    #[error("batch {seq}: series id {id} uses the reserved label \"node\"; the collector sets it")]
    ReservedLabel { seq: u64, id: u32 },
    #[error("batch {seq}: series id {id} has an unspecified metric kind")]
    UnspecifiedKind { seq: u64, id: u32 },
    #[error(
        "batch {seq}: series id {id} was never defined on this stream (send its SeriesDef first)"
    )]
    UnknownSeriesId { seq: u64, id: u32 },
    #[error("batch {seq}: series {series} has {timestamps} timestamps but {values} values")]
    LengthMismatch {
        seq: u64,
        series: String,
        timestamps: usize,
        values: usize,
    },
    #[error(
        "batch {seq}: series {series} has a non-finite value ({value}) at {timestamp_ms} ms; NaN and Inf are not accepted"
    )]
    NonFiniteValue {
        seq: u64,
        series: String,
        value: f64,
        timestamp_ms: i64,
    },
    #[error("batch {seq}: counter {series} has a negative value ({value}) at {timestamp_ms} ms")]
    NegativeCounter {
        seq: u64,
        series: String,
        value: f64,
        timestamp_ms: i64,
    },
    #[error(
        "batch {seq}: series {series} has timestamp {timestamp_ms} ms, {skew_s} s ahead of the collector's clock (at most {max_s} s allowed); check the agent's clock"
    )]
    TimestampInFuture {
        seq: u64,
        series: String,
        timestamp_ms: i64,
        skew_s: i64,
        max_s: u64,
    },
    #[error(
        "batch {seq}: series {series} has timestamp {timestamp_ms} ms, {age_s} s behind the collector's clock (at most {max_s} s allowed)"
    )]
    TimestampTooOld {
        seq: u64,
        series: String,
        timestamp_ms: i64,
        age_s: i64,
        max_s: u64,
    },
    #[error("storage failure")]
    Store(#[from] StoreError),
}

/// The gRPC-independent class of a refusal; `grpc.rs` turns it into a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    OverLimit,
    UnknownReference,
    Unauthenticated,
    Internal,
}

impl IngestError {
    pub fn refusal(&self) -> Refusal {
        use IngestError::*;
        match self {
            EmptyNodeName
            | InvalidNodeName(_)
            | Malformed { .. }
            | EmptyMessage
            | ZeroSequence
            | DuplicateSeriesId { .. }
            | InvalidSeries { .. }
            | ReservedLabel { .. }
            | ReservedName { .. }
            | KindConflict { .. }
            | UnspecifiedKind { .. }
            | LengthMismatch { .. }
            | NonFiniteValue { .. }
            | NegativeCounter { .. }
            | TimestampInFuture { .. }
            | TimestampTooOld { .. } => Refusal::Invalid,
            OverDecodeLimit { .. }
            | BatchTooLarge { .. }
            | TooManySamples { .. }
            | TooManySeries { .. }
            | TooManyLabels { .. }
            | LabelValueTooLong { .. } => Refusal::OverLimit,
            UnknownSeriesId { .. } => Refusal::UnknownReference,
            BadToken | MissingSession | UnknownSession | SessionReplaced { .. } => {
                Refusal::Unauthenticated
            }
            Store(_) => Refusal::Internal,
        }
    }

    /// A short, bounded label for the rejected-batches metric.
    pub fn reason(&self) -> &'static str {
        use IngestError::*;
        match self {
            EmptyNodeName | InvalidNodeName(_) => "invalid_node_name",
            BadToken => "bad_token",
            MissingSession | UnknownSession | SessionReplaced { .. } => "no_session",
            ReservedName { .. } => "reserved_name",
            KindConflict { .. } => "kind_conflict",
            Malformed { .. } => "malformed",
            OverDecodeLimit { .. } => "over_decode_limit",
            EmptyMessage => "empty_message",
            ZeroSequence => "zero_sequence",
            BatchTooLarge { .. } => "batch_too_large",
            TooManySamples { .. } => "too_many_samples",
            TooManySeries { .. } => "too_many_series",
            TooManyLabels { .. } => "too_many_labels",
            LabelValueTooLong { .. } => "label_value_too_long",
            DuplicateSeriesId { .. } => "duplicate_series_id",
            InvalidSeries { .. } | ReservedLabel { .. } | UnspecifiedKind { .. } => {
                "invalid_series"
            }
            UnknownSeriesId { .. } => "unknown_series_id",
            LengthMismatch { .. } => "length_mismatch",
            NonFiniteValue { .. } => "non_finite_value",
            NegativeCounter { .. } => "negative_counter",
            TimestampInFuture { .. } => "timestamp_in_future",
            TimestampTooOld { .. } => "timestamp_too_old",
            Store(_) => "storage_failure",
        }
    }

    /// The sequence number of the refused batch, when a batch was refused.
    pub fn seq(&self) -> Option<u64> {
        use IngestError::*;
        match self {
            BatchTooLarge { seq, .. }
            | TooManySamples { seq, .. }
            | TooManySeries { seq, .. }
            | TooManyLabels { seq, .. }
            | LabelValueTooLong { seq, .. }
            | DuplicateSeriesId { seq, .. }
            | InvalidSeries { seq, .. }
            | ReservedLabel { seq, .. }
            | ReservedName { seq, .. }
            | KindConflict { seq, .. }
            | UnspecifiedKind { seq, .. }
            | UnknownSeriesId { seq, .. }
            | LengthMismatch { seq, .. }
            | NonFiniteValue { seq, .. }
            | NegativeCounter { seq, .. }
            | TimestampInFuture { seq, .. }
            | TimestampTooOld { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

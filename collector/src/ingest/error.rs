//! Why an agent's request was refused. Mapped to gRPC statuses in one place: `grpc.rs`.

use crate::storage::StoreError;
use hcmon_common::LabelError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("registration refused: node_name is empty")]
    EmptyNodeName,
    /// `name` is a quoted, bounded excerpt: the refused name may be megabytes long.
    #[error("registration refused: the node name {name} ({bytes} bytes) {problem}")]
    InvalidNodeName {
        name: String,
        bytes: usize,
        problem: &'static str,
    },
    #[error("registration refused: {field} {problem}")]
    InvalidHostFact {
        field: &'static str,
        problem: String,
    },
    #[error("registration refused: the agent token does not match the collector's")]
    BadToken,
    #[error(
        "this collector requires a client certificate from agents: enroll the node (`hcmon enroll <node>` on the collector, then start the agent with --enroll-token)"
    )]
    CertificateRequired,
    #[error("the client certificate is for node {certificate:?}; it cannot act as node {asked:?}")]
    WrongNode { certificate: String, asked: String },
    #[error(
        "the certificate of node {node:?} was revoked by the collector's admin; enroll the node again with a new token"
    )]
    Revoked { node: String },
    #[error("no `hcmon-session` metadata: call Register first")]
    MissingSession,
    #[error("unknown or expired session: call Register again (the collector may have restarted)")]
    UnknownSession,
    #[error(
        "node {node:?} registered again since this stream began (the agent reconnected, or two agents share this node name); register again"
    )]
    SessionReplaced { node: String },
    /// A stream over one of the stream caps; `key` is the config key that sets it.
    #[error(
        "stream refused for node {node:?}: {limit} streams are open, the most `{key}` allows; close one or raise `{key}` in the collector's config"
    )]
    TooManyStreams {
        node: String,
        key: &'static str,
        limit: usize,
    },
    #[error(
        "batch {seq} does not follow the last batch of this spool the collector holds ({last}): {missing} missing; an agent that will never send them must say so in the batch's skipped_from (at most {next}); not acknowledged",
        missing = missing(*last, *seq),
        next = last + 1
    )]
    SequenceGap { seq: u64, last: u64 },
    #[error(
        "batch {seq} repeats a sequence number of this spool that the collector does not hold (it holds {durable_from} to {last}; lower numbers were declared skipped or precede the spool's registration); not acknowledged. An agent whose numbering went backwards must start a new spool epoch"
    )]
    SequenceNotHeld {
        seq: u64,
        durable_from: u64,
        last: u64,
    },
    #[error("batch {seq}: series id {id}: {source}")]
    ReservedName {
        seq: u64,
        id: u32,
        source: crate::telemetry::ReservedName,
    },
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
    #[error(
        "batch {seq} would bring this stream to {count} series definitions, over the limit of {max} (`limits.max_series_per_agent`)"
    )]
    TooManySeries { seq: u64, count: usize, max: usize },
    /// `name` is a bounded excerpt of the metric name.
    #[error("batch {seq}: series id {id} ({name}) {source}")]
    SeriesOverLimit {
        seq: u64,
        id: u32,
        name: String,
        source: super::limits::OverLimit,
    },
    #[error("batch {seq}: {source}")]
    SeriesCap {
        seq: u64,
        source: crate::catalog::CapExceeded,
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
    #[error("the collector could not draw a session id: {0}")]
    Random(#[from] crate::secure_random::RandomUnavailable),
    #[error("{0}; the batch was not stored")]
    Panicked(#[from] crate::tasks::Panicked),
}

/// The gRPC-independent class of a refusal; `grpc.rs` turns it into a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    OverLimit,
    UnknownReference,
    /// A batch that does not follow the last durable one: nothing is wrong with its content.
    OutOfSequence,
    Unauthenticated,
    /// The caller is known but may not do this: another node's name, a revoked certificate.
    Forbidden,
    Internal,
}

impl IngestError {
    pub fn refusal(&self) -> Refusal {
        use IngestError::*;
        match self {
            EmptyNodeName
            | InvalidNodeName { .. }
            | InvalidHostFact { .. }
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
            | SeriesOverLimit { .. }
            | SeriesCap { .. }
            | TooManyStreams { .. } => Refusal::OverLimit,
            UnknownSeriesId { .. } => Refusal::UnknownReference,
            SequenceGap { .. } | SequenceNotHeld { .. } => Refusal::OutOfSequence,
            BadToken
            | CertificateRequired
            | MissingSession
            | UnknownSession
            | SessionReplaced { .. } => Refusal::Unauthenticated,
            WrongNode { .. } | Revoked { .. } => Refusal::Forbidden,
            Store(_) | Random(_) | Panicked(_) => Refusal::Internal,
        }
    }

    /// A short, bounded label for the rejected-batches metric.
    pub fn reason(&self) -> &'static str {
        use IngestError::*;
        match self {
            EmptyNodeName | InvalidNodeName { .. } => "invalid_node_name",
            InvalidHostFact { .. } => "invalid_host_facts",
            SequenceGap { .. } => "sequence_gap",
            SequenceNotHeld { .. } => "sequence_not_held",
            BadToken => "bad_token",
            CertificateRequired => "no_certificate",
            WrongNode { .. } => "wrong_node",
            Revoked { .. } => "revoked",
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
            TooManyStreams { .. } => "too_many_streams",
            SeriesOverLimit { source, .. } => source.reason(),
            SeriesCap { source, .. } => source.reason(),
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
            Random(_) => "no_randomness",
            Panicked(_) => "internal_panic",
        }
    }

    /// The sequence number of the refused batch, when a batch was refused for its content (and
    /// so should be set aside). A batch out of sequence is fine in itself and is not named.
    pub fn seq(&self) -> Option<u64> {
        use IngestError::*;
        match self {
            BatchTooLarge { seq, .. }
            | TooManySamples { seq, .. }
            | TooManySeries { seq, .. }
            | SeriesOverLimit { seq, .. }
            | SeriesCap { seq, .. }
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

/// "batch 6 is" / "batches 6 to 9 are", for a gap between `last` and `seq`.
fn missing(last: u64, seq: u64) -> String {
    let (first, end) = (last + 1, seq - 1);
    if first == end {
        format!("batch {first} is")
    } else {
        format!("batches {first} to {end} are")
    }
}

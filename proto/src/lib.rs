//! The hcmon agent ↔ collector protocol. The `.proto` files under `hcmon/` are the source of
//! truth; see `hcmon/v1/ingest.proto` for the delivery contract.

/// Version 1 of the protocol.
pub mod v1 {
    tonic::include_proto!("hcmon.v1");

    /// Request metadata key carrying the session id from `Register`.
    pub const SESSION_METADATA_KEY: &str = "hcmon-session";
    /// Status metadata key carrying the sequence number of a refused batch.
    pub const REJECTED_SEQ_METADATA_KEY: &str = "hcmon-rejected-seq";
}

/// Prometheus remote-write 1.0 messages (`WriteRequest` and its parts).
pub mod prometheus {
    tonic::include_proto!("prometheus");
}

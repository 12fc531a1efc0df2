//! The hcmon agent ↔ collector protocol. The `.proto` files under `hcmon/` are the source of
//! truth; see `hcmon/v1/ingest.proto` for the delivery contract.

/// Version 1 of the protocol.
pub mod v1 {
    tonic::include_proto!("hcmon.v1");

    /// Request metadata key carrying the session id from `Register`.
    pub const SESSION_METADATA_KEY: &str = "hcmon-session";
    /// Status metadata key carrying the sequence number of a refused batch.
    pub const REJECTED_SEQ_METADATA_KEY: &str = "hcmon-rejected-seq";

    /// The longest node name, in bytes: a DNS name's limit.
    pub const MAX_NODE_NAME_BYTES: usize = 253;
    /// The longest host fact (and agent version) string, in bytes.
    pub const MAX_HOST_FACT_BYTES: usize = 256;

    /// Checks a node name against the rule documented on `RegisterRequest.node_name`, which the
    /// collector enforces at registration. The name ends up in labels, file names, URL paths and
    /// log lines, so it is held to a host name's alphabet. The error completes the sentence
    /// "the node name ...".
    pub fn check_node_name(name: &str) -> Result<(), &'static str> {
        let bytes = name.as_bytes();
        let Some(first) = bytes.first() else {
            return Err("is empty");
        };
        if bytes.len() > MAX_NODE_NAME_BYTES {
            return Err("is longer than 253 bytes");
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err("may hold only ASCII letters, digits, '.', '_' and '-'");
        }
        if !first.is_ascii_alphanumeric() {
            return Err("must start with an ASCII letter or digit");
        }
        if name.contains("..") {
            return Err("must not contain \"..\"");
        }
        Ok(())
    }
}

/// Prometheus remote-write 1.0 messages (`WriteRequest` and its parts).
pub mod prometheus {
    tonic::include_proto!("prometheus");
}

/// Prometheus remote write 2.0 (`io.prometheus.write.v2.Request`), for senders.
pub mod prometheus_v2 {
    tonic::include_proto!("io.prometheus.write.v2");
}

#[cfg(test)]
mod tests {
    use super::v1::check_node_name;

    #[test]
    fn node_names_are_host_names() {
        for good in ["nas", "web-01.example.com", "db_2", "A", &"a".repeat(253)] {
            assert_eq!(check_node_name(good), Ok(()), "{good:?}");
        }
        for (bad, problem) in [
            ("", "empty"),
            (&"a".repeat(254) as &str, "253 bytes"),
            ("a/b", "only ASCII"),
            ("caf\u{e9}", "only ASCII"),
            ("tab\there", "only ASCII"),
            ("a b", "only ASCII"),
            (".hidden", "start with"),
            ("-flag", "start with"),
            ("a..b", "\"..\""),
        ] {
            let err = check_node_name(bad).expect_err(bad);
            assert!(err.contains(problem), "{bad:?}: {err}");
        }
    }
}

//! The decoders of bytes from the network that are private to their modules, passed through
//! for the fuzz targets (`tests/fuzz`); nothing else calls them.

use crate::ingest::IngestLimits;
use crate::ingest::validate::{TargetLabels, validate, validate_registration};
use hcmon_proto::v1::{Batch, RegisterRequest};
use prost::Message;
use std::collections::HashMap;
use std::error::Error;

/// Decodes a `Batch` and validates it, under the default limits, as the first batch of a stream.
pub fn batch(bytes: &[u8], now_ms: i64, resend: bool) -> Result<(), Box<dyn Error>> {
    let batch = Batch::decode(bytes)?;
    let limits = IngestLimits::default();
    let target = TargetLabels::new("node", "", "");
    validate(
        batch,
        "node",
        &target,
        &HashMap::new(),
        &limits,
        now_ms,
        resend,
    )?;
    Ok(())
}

/// Decodes a `RegisterRequest` and validates it.
pub fn registration(bytes: &[u8]) -> Result<(), Box<dyn Error>> {
    validate_registration(&RegisterRequest::decode(bytes)?)?;
    Ok(())
}

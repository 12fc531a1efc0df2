//! The remote-write reader: a request body through `IngestService::remote_write`, the entry the
//! HTTP handler calls, on an in-memory store. The first byte picks how the rest arrives:
//! snappy-compressed here, so the protobuf reader sees arbitrary bytes, or as is, so the snappy
//! decoder does; and which message it is read as, remote write 1.0 or 2.0.
#![no_main]

use hcmon_collector::catalog::SeriesCatalog;
use hcmon_collector::ingest::{Admission, IngestService, Observers, Protocol};
use hcmon_collector::storage::{MemoryKv, StorageConfig, Tsdb};
use hcmon_collector::telemetry::CollectorMetrics;
use std::sync::{Arc, LazyLock};

/// A fixed clock, so which timestamps are in range does not drift during a run.
const NOW_MS: i64 = 1_700_000_000_000;

static INGEST: LazyLock<Arc<IngestService>> = LazyLock::new(|| {
    let recovered = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
        .expect("an empty store opens");
    IngestService::new(
        Arc::new(recovered.tsdb),
        Arc::new(SeriesCatalog::new(recovered.series)),
        recovered.nodes,
        Arc::new(CollectorMetrics::new()),
        Admission::default(),
        Arc::new(|| NOW_MS),
        Observers::new(Vec::new()),
    )
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = match mode & 1 {
        0 => match snap::raw::Encoder::new().compress_vec(rest) {
            Ok(body) => body,
            Err(_) => return,
        },
        _ => rest.to_vec(),
    };
    let protocol = match mode & 2 {
        0 => Protocol::V1,
        _ => Protocol::V2,
    };
    let _ = INGEST.remote_write(protocol, &body);
});

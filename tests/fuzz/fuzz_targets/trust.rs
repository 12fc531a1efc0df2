//! What trust reads from the network and the disk: enrollment tokens' text, agents'
//! certificate requests (signed by a real CA, made once per process), an agent's stored
//! identity (key, certificate, CA), and the collector's stored API tokens and CA records opened
//! from an in-memory store. The first byte picks the decoder.
#![no_main]

use hcmon_agent::tls::identity::Identity;
use hcmon_collector::access::TokenStore;
use hcmon_collector::pki::registry::CertificateRegistry;
use hcmon_collector::pki::{CertificateAuthority, PkiPaths};
use hcmon_collector::storage::{Kv, KvBatch, MemoryKv, StorageConfig, Table, Tsdb};
use hcmon_common::EnrollmentToken;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const NOW_MS: i64 = 1_800_000_000_000;

fn authority() -> &'static CertificateAuthority {
    static CA: OnceLock<CertificateAuthority> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hcmon-fuzz-ca-{}", std::process::id()));
        CertificateAuthority::open_or_create(&PkiPaths { dir }, NOW_MS).expect("a CA in /tmp")
    })
}

/// A store whose `table` holds `data` split at its first zero byte into key and value.
fn store_with(table: Table, data: &[u8]) -> Option<Arc<Tsdb>> {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (key, value) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let kv = MemoryKv::default();
    let mut batch = KvBatch::default();
    batch.put(table, key.to_vec(), value.to_vec());
    kv.write(batch, false)
        .expect("the in-memory store takes any batch");
    let recovered = Tsdb::open(Box::new(kv), StorageConfig::default()).ok()?;
    Some(Arc::new(recovered.tsdb))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 5 {
        0 => {
            if let Ok(token) = EnrollmentToken::parse(&text) {
                assert_eq!(EnrollmentToken::parse(&token.to_string()), Ok(token));
            }
        }
        1 => {
            let _ = authority().issue("node", &text, Duration::from_secs(3600), NOW_MS);
        }
        2 => {
            let mut parts = text.splitn(3, '\u{0}').map(str::to_owned);
            let (key, cert, ca) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let _ = Identity::from_pem(key, cert, ca, Path::new("/nonexistent"));
        }
        3 => {
            if let Some(tsdb) = store_with(Table::Tokens, rest) {
                let _ = TokenStore::open(tsdb);
            }
        }
        _ => {
            if let Some(tsdb) = store_with(Table::Pki, rest) {
                let _ = CertificateRegistry::open(tsdb);
            }
        }
    }
});

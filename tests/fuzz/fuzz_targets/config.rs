//! The TOML configs: arbitrary text as a `CollectorConfig` and as an `AgentConfig`, each
//! validated when it parses. (Secret files are not read: that is file I/O, not decoding.)
#![no_main]

use hcmon_agent::config::AgentConfig;
use hcmon_collector::config::CollectorConfig;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = toml::from_str::<CollectorConfig>(text) {
        let _ = config.validate();
    }
    if let Ok(config) = toml::from_str::<AgentConfig>(text) {
        let _ = config.validate();
    }
});

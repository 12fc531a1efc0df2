//! Alerting state in the `alerts` table of the collector's RocksDB: alerts, silences,
//! incidents with their history, the book's counters and throttle, the delivery outbox and the
//! key that signs acknowledge links. One [`KvBatch`] per change set, written durably, so what
//! was decided (sent, escalated, acknowledged) and what is queued to send survive kill -9
//! together.
//!
//! Keys: `a/<alert id>`, `s/<silence id>`, `i/<incident id>`, `e/<incident id>/<seq BE>`,
//! `o/<seq BE>`, `state`, `secret`. Values are JSON: small, rare writes, readable when debugging.

use super::book::{
    AlertRecord, BookState, Changes, Incident, IncidentEvent, Outgoing, SilenceRecord,
};
use crate::storage::{Kv, KvBatch, StoreError, Table};
use serde::de::DeserializeOwned;

const STATE: &[u8] = b"state";
const SECRET: &[u8] = b"secret";

/// Everything the book and the delivery queue resume from.
#[derive(Debug, Default)]
pub struct Loaded {
    pub alerts: Vec<AlertRecord>,
    pub silences: Vec<SilenceRecord>,
    /// Incidents not resolved yet.
    pub open_incidents: Vec<Incident>,
    pub state: BookState,
    /// Notifications queued but not yet delivered, oldest first.
    pub outbox: Vec<Outgoing>,
}

fn corrupt(what: &'static str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: e.to_string(),
    }
}

fn scan_prefix<T: DeserializeOwned>(
    kv: &dyn Kv,
    prefix: &[u8],
    what: &'static str,
) -> Result<Vec<T>, StoreError> {
    let mut end = prefix.to_vec();
    *end.last_mut().expect("prefix is not empty") += 1;
    let mut out = Vec::new();
    let mut failure = None;
    kv.scan(Table::Alerts, prefix, &end, &mut |_, v| {
        match serde_json::from_slice(v) {
            Ok(value) => out.push(value),
            Err(e) => failure = Some(corrupt(what, e)),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(out), Err)
}

/// Reads the stored alerting state.
pub fn load(kv: &dyn Kv) -> Result<Loaded, StoreError> {
    let incidents: Vec<Incident> = scan_prefix(kv, b"i/", "incident")?;
    let state = match kv.get(Table::Alerts, STATE)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt("state", e))?,
        None => BookState::default(),
    };
    Ok(Loaded {
        alerts: scan_prefix(kv, b"a/", "alert")?,
        silences: scan_prefix(kv, b"s/", "silence")?,
        open_incidents: incidents
            .into_iter()
            .filter(|i| i.resolved_ms.is_none())
            .collect(),
        state,
        outbox: scan_prefix(kv, b"o/", "outbox entry")?,
    })
}

fn key(prefix: &str, id: &str) -> Vec<u8> {
    format!("{prefix}{id}").into_bytes()
}

fn event_key(event: &IncidentEvent) -> Vec<u8> {
    let mut k = key("e/", &event.incident);
    k.push(b'/');
    k.extend_from_slice(&event.seq.to_be_bytes());
    k
}

fn outbox_key(seq: u64) -> Vec<u8> {
    let mut k = b"o/".to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("alerting records serialize")
}

/// Writes a change set, plus the removal of delivered outbox entries, in one durable batch.
pub fn write(
    kv: &dyn Kv,
    changes: &Changes,
    state: &BookState,
    delivered: &[u64],
) -> Result<(), StoreError> {
    let mut batch = KvBatch::default();
    for (id, record) in &changes.alerts {
        match record {
            Some(record) => batch.put(Table::Alerts, key("a/", id), json(record)),
            None => batch.delete(Table::Alerts, key("a/", id)),
        }
    }
    for (id, record) in &changes.silences {
        match record {
            Some(record) => batch.put(Table::Alerts, key("s/", id), json(record)),
            None => batch.delete(Table::Alerts, key("s/", id)),
        }
    }
    for incident in &changes.incidents {
        batch.put(Table::Alerts, key("i/", &incident.id), json(incident));
    }
    for event in &changes.events {
        batch.put(Table::Alerts, event_key(event), json(event));
    }
    for outgoing in &changes.outbox {
        batch.put(Table::Alerts, outbox_key(outgoing.seq), json(outgoing));
    }
    for seq in delivered {
        batch.delete(Table::Alerts, outbox_key(*seq));
    }
    if changes.state {
        batch.put(Table::Alerts, STATE, json(state));
    }
    if batch.is_empty() {
        return Ok(());
    }
    kv.write(batch, true)
}

/// The key that signs acknowledge links: made once, at random, and kept.
pub fn signing_key(kv: &dyn Kv) -> Result<Vec<u8>, StoreError> {
    if let Some(secret) = kv.get(Table::Alerts, SECRET)? {
        return Ok(secret);
    }
    let secret: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
    let mut batch = KvBatch::default();
    batch.put(Table::Alerts, SECRET, secret.clone());
    kv.write(batch, true)?;
    Ok(secret)
}

/// Incidents, newest first, at most `limit`.
pub fn incidents(kv: &dyn Kv, limit: usize) -> Result<Vec<Incident>, StoreError> {
    let mut all: Vec<Incident> = scan_prefix(kv, b"i/", "incident")?;
    all.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then(a.id.cmp(&b.id)));
    all.truncate(limit);
    Ok(all)
}

/// One incident and its history, oldest event first.
pub fn incident(
    kv: &dyn Kv,
    id: &str,
) -> Result<Option<(Incident, Vec<IncidentEvent>)>, StoreError> {
    let Some(bytes) = kv.get(Table::Alerts, &key("i/", id))? else {
        return Ok(None);
    };
    let incident: Incident = serde_json::from_slice(&bytes).map_err(|e| corrupt("incident", e))?;
    let mut prefix = key("e/", id);
    prefix.push(b'/');
    let events = scan_prefix(kv, &prefix, "incident event")?;
    Ok(Some((incident, events)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryKv;

    #[test]
    fn an_empty_store_loads_empty_and_the_signing_key_is_kept() {
        let kv = MemoryKv::default();
        let loaded = load(&kv).unwrap();
        assert!(loaded.alerts.is_empty() && loaded.outbox.is_empty());
        let key = signing_key(&kv).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(signing_key(&kv).unwrap(), key);
    }
}

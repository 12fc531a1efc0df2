//! Alerting state in the `alerts` table of the collector's RocksDB: alerts, silences,
//! incidents with their history, the book's counters and throttle, the delivery outbox and the
//! key that signs acknowledge links. One [`KvBatch`] per change set, written durably, so what
//! was decided (sent, escalated, acknowledged) and what is queued to send survive kill -9
//! together.
//!
//! Keys: `a/<alert id>`, `s/<silence id>`, `i/<incident id>`, `e/<incident id>/<seq BE>`,
//! `o/<seq BE>`, `state`, `secret`, and `q/<any of those>` for values set aside as unreadable.
//!
//! # Format
//! Each value is one record of `records.rs`, which owns the on-disk shape and its versions.
//!
//! # Unreadable values
//! A value that cannot be read must not stop the collector from starting (a crash loop under
//! systemd, with every alert lost): [`load`] moves it to `q/<its key>`, unchanged, for an
//! operator to inspect, and loads the rest; the service logs and counts each one
//! ([`Quarantined::emit`]).

use super::book::{
    AlertRecord, BookState, Changes, Incident, IncidentEvent, Outgoing, SilenceRecord,
};
use super::ids::IncidentId;
use super::policy::Severity;
use super::records::{
    AlertRecordV2, BookStateRecordV2, IncidentEventRecordV2, IncidentRecordV2, OutboxRecordV2,
    Record, RecordKind, SilenceRecordV2, decode, encode,
};
use crate::analytics::slo::{IncidentFact, IncidentSeverity, Window};
use crate::storage::{Kv, KvBatch, StoreError, Table};

const STATE: &[u8] = b"state";
const SECRET: &[u8] = b"secret";
const QUARANTINE: &[u8] = b"q/";

/// A stored value [`load`] could not read and set aside.
#[derive(Debug)]
pub struct Quarantined {
    pub record: RecordKind,
    /// Its key, non-printable bytes (sequence numbers) escaped.
    pub key: String,
    /// Why it could not be read.
    pub error: StoreError,
}

impl Quarantined {
    /// Logs it and counts it in `hcmon_collector_quarantined_records_total`.
    pub fn emit(&self, counter: &prometheus::IntCounterVec) {
        counter.with_label_values(&[self.record.name()]).inc();
        tracing::error!(
            record = self.record.name(),
            key = %self.key,
            error = %self.error,
            "unreadable alerting record set aside under q/<key>; the rest loaded"
        );
    }
}

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
    /// Values that could not be read, left out of the above.
    pub quarantined: Vec<Quarantined>,
    /// Why moving them to `q/` failed, if it did: they stay under their keys, are left out all
    /// the same, and are moved at the next start.
    pub quarantine_failed: Option<StoreError>,
}

/// The first key after every key that starts with `prefix` (which ends in `/`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    *end.last_mut().expect("prefix is not empty") += 1;
    end
}

/// Every value under `prefix`; the first unreadable one fails the whole read.
fn scan_prefix<R: Record>(kv: &dyn Kv, prefix: &[u8]) -> Result<Vec<R::Domain>, StoreError> {
    let mut out = Vec::new();
    let mut failure = None;
    kv.scan(Table::Alerts, prefix, &prefix_end(prefix), &mut |_, v| {
        match decode::<R>(v) {
            Ok(value) => out.push(value),
            Err(error) => failure = Some(error),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(out), Err)
}

/// A value that could not be read, with what is needed to move it aside.
struct Unreadable {
    record: RecordKind,
    key: Vec<u8>,
    value: Vec<u8>,
    error: StoreError,
}

/// Every readable value under `prefix`; the others go to `bad`.
fn scan_readable<R: Record>(
    kv: &dyn Kv,
    prefix: &[u8],
    bad: &mut Vec<Unreadable>,
) -> Result<Vec<R::Domain>, StoreError> {
    let mut out = Vec::new();
    kv.scan(Table::Alerts, prefix, &prefix_end(prefix), &mut |k, v| {
        match decode::<R>(v) {
            Ok(value) => out.push(value),
            Err(error) => bad.push(Unreadable {
                record: R::KIND,
                key: k.to_vec(),
                value: v.to_vec(),
                error,
            }),
        }
        true
    })?;
    Ok(out)
}

/// Moves unreadable values to `q/<key>` in one durable batch.
fn quarantine(kv: &dyn Kv, bad: &[Unreadable]) -> Result<(), StoreError> {
    let mut batch = KvBatch::default();
    for b in bad {
        let mut moved = QUARANTINE.to_vec();
        moved.extend_from_slice(&b.key);
        batch.put(Table::Alerts, moved, b.value.clone());
        batch.delete(Table::Alerts, b.key.clone());
    }
    if batch.is_empty() {
        return Ok(());
    }
    kv.write(batch, true)
}

/// Reads the stored alerting state. Unreadable values are moved aside, not fatal: only the
/// store itself failing is an error.
pub fn load(kv: &dyn Kv) -> Result<Loaded, StoreError> {
    let mut bad = Vec::new();
    let incidents = scan_readable::<IncidentRecordV2>(kv, b"i/", &mut bad)?;
    // Events are read only by the API, but checked now, so that an unreadable one is set aside
    // at start rather than failing an incident's page later.
    let events = scan_readable::<IncidentEventRecordV2>(kv, b"e/", &mut bad)?;
    let mut state = match kv.get(Table::Alerts, STATE)? {
        Some(bytes) => decode::<BookStateRecordV2>(&bytes).unwrap_or_else(|error| {
            bad.push(Unreadable {
                record: RecordKind::State,
                key: STATE.to_vec(),
                value: bytes,
                error,
            });
            // Throttle and grouping start afresh: at worst a notification goes out sooner.
            BookState::default()
        }),
        None => BookState::default(),
    };
    let alerts = scan_readable::<AlertRecordV2>(kv, b"a/", &mut bad)?;
    let silences = scan_readable::<SilenceRecordV2>(kv, b"s/", &mut bad)?;
    let outbox = scan_readable::<OutboxRecordV2>(kv, b"o/", &mut bad)?;
    // Sequence numbers key events and queued notifications: one counted afresh, after the state
    // was set aside, must not overwrite them.
    let used = events
        .iter()
        .map(|e| e.seq)
        .chain(outbox.iter().map(|o| o.seq));
    state.next_seq = used.fold(state.next_seq, u64::max);
    let quarantine_failed = quarantine(kv, &bad).err();
    Ok(Loaded {
        alerts,
        silences,
        open_incidents: incidents
            .into_iter()
            .filter(|i| i.resolved_ms.is_none())
            .collect(),
        state,
        outbox,
        quarantined: bad
            .into_iter()
            .map(|b| Quarantined {
                record: b.record,
                key: b.key.escape_ascii().to_string(),
                error: b.error,
            })
            .collect(),
        quarantine_failed,
    })
}

fn key(prefix: &str, id: &impl std::fmt::Display) -> Vec<u8> {
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
            Some(record) => batch.put(
                Table::Alerts,
                key("a/", id),
                encode::<AlertRecordV2>(record),
            ),
            None => batch.delete(Table::Alerts, key("a/", id)),
        }
    }
    for (id, record) in &changes.silences {
        match record {
            Some(record) => batch.put(
                Table::Alerts,
                key("s/", id),
                encode::<SilenceRecordV2>(record),
            ),
            None => batch.delete(Table::Alerts, key("s/", id)),
        }
    }
    for incident in &changes.incidents {
        let value = encode::<IncidentRecordV2>(incident);
        batch.put(Table::Alerts, key("i/", &incident.id), value);
    }
    for event in &changes.events {
        let value = encode::<IncidentEventRecordV2>(event);
        batch.put(Table::Alerts, event_key(event), value);
    }
    for outgoing in &changes.outbox {
        let value = encode::<OutboxRecordV2>(outgoing);
        batch.put(Table::Alerts, outbox_key(outgoing.seq), value);
    }
    for seq in delivered {
        batch.delete(Table::Alerts, outbox_key(*seq));
    }
    if changes.state {
        batch.put(Table::Alerts, STATE, encode::<BookStateRecordV2>(state));
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
    let secret = crate::secure_random::bytes::<32>()
        .map_err(|e| StoreError::Write(Box::new(e)))?
        .to_vec();
    let mut batch = KvBatch::default();
    batch.put(Table::Alerts, SECRET, secret.clone());
    kv.write(batch, true)?;
    Ok(secret)
}

/// Incidents, newest first, at most `limit`.
pub fn incidents(kv: &dyn Kv, limit: usize) -> Result<Vec<Incident>, StoreError> {
    let mut all = scan_prefix::<IncidentRecordV2>(kv, b"i/")?;
    all.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then(a.id.cmp(&b.id)));
    all.truncate(limit);
    Ok(all)
}

/// The incidents that started in `range`, as SLOs and reports count them, oldest first.
/// Incident keys are by alert, not by time, so this reads every incident head (small records,
/// one per episode) and keeps those in range.
pub fn incident_facts(kv: &dyn Kv, range: Window) -> Result<Vec<IncidentFact>, StoreError> {
    let mut facts: Vec<IncidentFact> = scan_prefix::<IncidentRecordV2>(kv, b"i/")?
        .into_iter()
        .filter(|i| range.contains(i.started_ms))
        .map(fact)
        .collect();
    facts.sort_by(|a, b| {
        a.started_ms
            .cmp(&b.started_ms)
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(facts)
}

/// An incident as the SLO engine sees it: named by its `alertname`.
fn fact(incident: Incident) -> IncidentFact {
    let alert = incident
        .labels
        .get("alertname")
        .cloned()
        .unwrap_or_else(|| incident.alert.to_string());
    IncidentFact {
        id: incident.id.to_string(),
        alert,
        labels: incident.labels,
        severity: match incident.severity {
            Severity::Warning => IncidentSeverity::Warning,
            Severity::Error => IncidentSeverity::Error,
            Severity::Critical => IncidentSeverity::Critical,
        },
        started_ms: incident.started_ms,
        acknowledged_ms: incident.acknowledged.map(|(at, _)| at),
        resolved_ms: incident.resolved_ms,
    }
}

/// One incident and its history, oldest event first.
pub fn incident(
    kv: &dyn Kv,
    id: &IncidentId,
) -> Result<Option<(Incident, Vec<IncidentEvent>)>, StoreError> {
    let Some(bytes) = kv.get(Table::Alerts, &key("i/", id))? else {
        return Ok(None);
    };
    let incident = decode::<IncidentRecordV2>(&bytes)?;
    let mut prefix = key("e/", id);
    prefix.push(b'/');
    let events = scan_prefix::<IncidentEventRecordV2>(kv, &prefix)?;
    Ok(Some((incident, events)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::book::{AlertBook, BookConfig, Happened, Observation};
    use crate::alerting::lifecycle::{Direction, LifecycleRules, Threshold};
    use crate::alerting::notify::Evidence;
    use crate::alerting::policy::Severity;
    use crate::storage::MemoryKv;
    use std::collections::BTreeMap;

    const NOW: i64 = 1_777_636_800_000;
    const DAY_S: f64 = 86_400.0;

    fn book(loaded: Loaded) -> AlertBook {
        let config = BookConfig {
            group_window_ms: 60_000,
            ..BookConfig::bare()
        };
        AlertBook::restore(
            config,
            loaded.alerts,
            loaded.silences,
            loaded.open_incidents,
            loaded.state,
        )
    }

    /// A disk forecast as the forecast rule phrases it: seconds until the disk is full.
    fn forecast(seconds: f64) -> Observation {
        Observation {
            alertname: "DiskWillFill".into(),
            labels: BTreeMap::from([("node".to_owned(), "nas".to_owned())]),
            value: seconds,
            rules: LifecycleRules {
                threshold: Threshold {
                    direction: Direction::Below,
                    fire: DAY_S,
                    recover: DAY_S * 1.25,
                },
                for_ms: 0,
                flap_window_ms: 3_600_000,
                flap_max_changes: 4,
            },
            severity: (seconds <= DAY_S).then_some(Severity::Warning),
            annotations: BTreeMap::new(),
            evidence: Evidence {
                threshold: Some(0.95),
                ..Evidence::default()
            },
            inhibits_node: false,
            judged: None,
        }
    }

    fn persist(kv: &MemoryKv, book: &mut AlertBook) {
        let changes = book.take_changes();
        write(kv, &changes, book.state(), &[]).unwrap();
    }

    #[test]
    fn a_resolved_forecast_alert_with_an_infinite_value_reloads() {
        let kv = MemoryKv::default();
        let mut first = book(load(&kv).unwrap());
        first.observe(forecast(3_600.0), NOW);
        persist(&kv, &mut first);
        // The disk stopped filling: the forecast never reaches the limit, +Inf.
        first.observe(forecast(f64::INFINITY), NOW + 60_000);
        persist(&kv, &mut first);

        let loaded = load(&kv).unwrap();
        assert!(loaded.quarantined.is_empty(), "{:?}", loaded.quarantined);
        let reloaded = book(loaded);
        let alert = reloaded.alerts().next().expect("the alert is kept");
        assert_eq!(alert.lifecycle.state.name(), "resolved");
        assert_eq!(alert.value, f64::INFINITY);
        let incident = IncidentId::new(&alert.id, NOW);
        let (_, events) = incident_with(&kv, &incident);
        let resolved = Happened::Resolved {
            value: f64::INFINITY,
        };
        assert!(events.iter().any(|e| e.what == resolved), "{events:?}");
    }

    #[test]
    fn incident_facts_are_the_incidents_started_in_range_named_by_alertname() {
        let kv = MemoryKv::default();
        let mut first = book(load(&kv).unwrap());
        first.observe(forecast(3_600.0), NOW);
        persist(&kv, &mut first);
        first.observe(forecast(f64::INFINITY), NOW + 60_000);
        persist(&kv, &mut first);

        let facts = incident_facts(&kv, Window::new(NOW, NOW + 1)).unwrap();
        assert_eq!(facts.len(), 1);
        let fact = &facts[0];
        assert_eq!(
            (fact.alert.as_str(), fact.severity),
            ("DiskWillFill", IncidentSeverity::Warning)
        );
        assert_eq!(
            (fact.started_ms, fact.resolved_ms, fact.acknowledged_ms),
            (NOW, Some(NOW + 60_000), None)
        );
        assert_eq!(fact.labels.get("node").map(String::as_str), Some("nas"));
        assert!(
            incident_facts(&kv, Window::new(NOW + 1, NOW + 2))
                .unwrap()
                .is_empty()
        );
    }

    fn incident_with(kv: &MemoryKv, id: &IncidentId) -> (Incident, Vec<IncidentEvent>) {
        incident(kv, id).unwrap().expect("the incident is stored")
    }

    #[test]
    fn a_nan_value_reloads_as_nan() {
        let kv = MemoryKv::default();
        let mut first = book(load(&kv).unwrap());
        first.observe(forecast(f64::NAN), NOW);
        let mut changes = first.take_changes();
        let mut record = first.alerts().next().unwrap().clone();
        record.evidence.expected = Some((f64::NEG_INFINITY, f64::NAN));
        changes.alerts.insert(record.id.clone(), Some(record));
        write(&kv, &changes, first.state(), &[]).unwrap();

        let reloaded = book(load(&kv).unwrap());
        let alert = reloaded.alerts().next().unwrap();
        assert!(alert.value.is_nan());
        let (low, high) = alert.evidence.expected.unwrap();
        assert!(low == f64::NEG_INFINITY && high.is_nan());
    }

    #[test]
    fn unreadable_records_are_set_aside_and_legacy_nulls_read_as_nan() {
        let kv = MemoryKv::default();
        let mut first = book(Loaded::default());
        first.observe(forecast(3_600.0), NOW);
        persist(&kv, &mut first);
        let good = first.alerts().next().unwrap().clone();
        // What the previous version wrote for a resolved forecast alert: no format wrapper,
        // +Inf as null.
        let mut legacy = serde_json::to_value(AlertRecordV2::of(&good)).unwrap();
        legacy["id"] = "legacy".into();
        legacy["value"] = serde_json::Value::Null;
        let legacy = serde_json::to_vec(&legacy).unwrap();
        let legacy_event =
            br#"{"seq":99,"incident":"legacy-1","at_ms":5,"event":"resolved","value":null}"#;
        let mut batch = KvBatch::default();
        batch.put(Table::Alerts, b"a/legacy".to_vec(), legacy);
        batch.put(
            Table::Alerts,
            b"e/legacy-1/x".to_vec(),
            legacy_event.to_vec(),
        );
        batch.put(Table::Alerts, b"a/garbage".to_vec(), b"{\"id\": 7".to_vec());
        batch.put(
            Table::Alerts,
            b"s/newer".to_vec(),
            br#"{"format": 3, "record": {}}"#.to_vec(),
        );
        batch.put(Table::Alerts, STATE.to_vec(), b"[]".to_vec());
        kv.write(batch, true).unwrap();

        let loaded = load(&kv).unwrap();
        let mut ids: Vec<&str> = loaded.alerts.iter().map(|a| a.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, [good.id.as_str(), "legacy"]);
        let legacy = loaded
            .alerts
            .iter()
            .find(|a| a.id.as_str() == "legacy")
            .unwrap();
        assert!(legacy.value.is_nan());
        assert!(loaded.quarantine_failed.is_none());
        let set_aside: Vec<(RecordKind, &str)> = loaded
            .quarantined
            .iter()
            .map(|q| (q.record, q.key.as_str()))
            .collect();
        assert_eq!(
            set_aside,
            [
                (RecordKind::State, "state"),
                (RecordKind::Alert, "a/garbage"),
                (RecordKind::Silence, "s/newer"),
            ]
        );
        let newer = loaded.quarantined[2].error.to_string();
        assert!(newer.contains("format 3"), "{newer}");
        // Kept, unchanged, for an operator; gone from where the collector reads.
        let kept = kv.get(Table::Alerts, b"q/a/garbage").unwrap();
        assert_eq!(kept.as_deref(), Some(&b"{\"id\": 7"[..]));
        assert!(kv.get(Table::Alerts, b"a/garbage").unwrap().is_none());
        assert!(kv.get(Table::Alerts, b"q/state").unwrap().is_some());

        let again = load(&kv).unwrap();
        assert!(again.quarantined.is_empty(), "{:?}", again.quarantined);
        assert_eq!(again.alerts.len(), 2);
        assert_eq!(
            again.state.next_seq, 99,
            "numbering resumes after the events kept, not from 0"
        );
        let events = scan_prefix::<IncidentEventRecordV2>(&kv, b"e/legacy-1/").unwrap();
        assert!(matches!(events[0].what, Happened::Resolved { value } if value.is_nan()));
    }

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

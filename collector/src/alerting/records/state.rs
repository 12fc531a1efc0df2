//! The book's state record, `state`: its counters, the throttle, the open groups and the
//! resolved episodes waiting for their group. The throttle's and groups' keys are written
//! joined with `\u{1f}`, as format 2 has them.

use super::outbox::AlertSummaryV2;
use super::{KEY_SEPARATOR, Record, RecordError, RecordKind, SeverityV2, target_names, targets};
use crate::alerting::book::{BookState, Closing};
use crate::alerting::policy::{
    AlertNotice, GroupKey, GroupKind, Grouper, Pending, Throttle, ThrottleKey,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// An alert and severity in the throttle, or a group's entry: `alert` is `<alert id>/<severity>`
/// in the throttle's held lists, the alert id in a firing group, the incident id in a resolved
/// group; `severity` is meaningless in a resolved group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingV2 {
    alert: String,
    severity: SeverityV2,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct ThrottleV2 {
    /// `<channel>\u{1f}<alert id>/<severity>` → when last sent.
    #[serde(default)]
    last_sent: BTreeMap<String, i64>,
    #[serde(default)]
    sent: BTreeMap<String, VecDeque<i64>>,
    #[serde(default)]
    held: BTreeMap<String, Vec<PendingV2>>,
}

/// `<alert id>/<severity>`.
fn alert_and_severity(notice: &AlertNotice) -> String {
    format!("{}/{}", notice.alert, notice.severity.name())
}

fn parse_alert_and_severity(text: &str) -> Option<AlertNotice> {
    let (alert, severity) = text.rsplit_once('/')?;
    Some(AlertNotice {
        alert: alert.into(),
        severity: SeverityV2::parse(severity)?,
    })
}

impl From<&Throttle> for ThrottleV2 {
    fn from(t: &Throttle) -> Self {
        Self {
            last_sent: t
                .last_sent
                .iter()
                .map(|(key, at)| {
                    let notice = AlertNotice {
                        alert: key.alert.clone(),
                        severity: key.severity,
                    };
                    let key = format!(
                        "{}{KEY_SEPARATOR}{}",
                        key.channel,
                        alert_and_severity(&notice)
                    );
                    (key, *at)
                })
                .collect(),
            sent: t.sent.clone(),
            held: t
                .held
                .iter()
                .map(|(channel, held)| {
                    let held = held
                        .iter()
                        .map(|notice| PendingV2 {
                            alert: alert_and_severity(notice),
                            severity: notice.severity.into(),
                        })
                        .collect();
                    (channel.clone(), held)
                })
                .collect(),
        }
    }
}

impl TryFrom<ThrottleV2> for Throttle {
    type Error = RecordError;

    fn try_from(t: ThrottleV2) -> Result<Self, RecordError> {
        let mut last_sent = BTreeMap::new();
        for (key, at) in t.last_sent {
            let notice = key
                .split_once(KEY_SEPARATOR)
                .and_then(|(channel, rest)| Some((channel, parse_alert_and_severity(rest)?)));
            let Some((channel, notice)) = notice else {
                return Err(RecordError::ThrottleKey(key));
            };
            let key = ThrottleKey {
                channel: channel.to_owned(),
                alert: notice.alert,
                severity: notice.severity,
            };
            last_sent.insert(key, at);
        }
        let mut held = BTreeMap::new();
        for (channel, pending) in t.held {
            let notices = pending
                .into_iter()
                .map(|p| parse_alert_and_severity(&p.alert).ok_or(RecordError::Held(p.alert)))
                .collect::<Result<Vec<_>, _>>()?;
            held.insert(channel, notices);
        }
        Ok(Self {
            last_sent,
            sent: t.sent,
            held,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct GrouperV2 {
    /// `firing\u{1f}<group>` or `resolved\u{1f}<group>` → when the window opened, and what
    /// waits in it.
    #[serde(default)]
    open: BTreeMap<String, (i64, Vec<PendingV2>)>,
}

fn group_kind_name(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Firing => "firing",
        GroupKind::Resolved => "resolved",
    }
}

impl From<&Grouper> for GrouperV2 {
    fn from(g: &Grouper) -> Self {
        let entry = |p: &Pending| match p {
            Pending::Firing(notice) => PendingV2 {
                alert: notice.alert.to_string(),
                severity: notice.severity.into(),
            },
            Pending::Resolved { incident } => PendingV2 {
                alert: incident.to_string(),
                severity: SeverityV2::Warning,
            },
        };
        Self {
            open: g
                .open
                .iter()
                .map(|(key, (opened, pending))| {
                    let key = format!("{}{KEY_SEPARATOR}{}", group_kind_name(key.kind), key.group);
                    (key, (*opened, pending.iter().map(entry).collect()))
                })
                .collect(),
        }
    }
}

impl TryFrom<GrouperV2> for Grouper {
    type Error = RecordError;

    fn try_from(g: GrouperV2) -> Result<Self, RecordError> {
        let mut open = BTreeMap::new();
        for (key, (opened, pending)) in g.open {
            let kind = key.split_once(KEY_SEPARATOR).and_then(|(kind, group)| {
                [GroupKind::Firing, GroupKind::Resolved]
                    .into_iter()
                    .find(|k| group_kind_name(*k) == kind)
                    .map(|kind| (kind, group.to_owned()))
            });
            let Some((kind, group)) = kind else {
                return Err(RecordError::GroupKey(key));
            };
            let pending = pending
                .into_iter()
                .map(|p| match kind {
                    GroupKind::Firing => Pending::Firing(AlertNotice {
                        alert: p.alert.into(),
                        severity: p.severity.into(),
                    }),
                    GroupKind::Resolved => Pending::Resolved {
                        incident: p.alert.into(),
                    },
                })
                .collect();
            open.insert(GroupKey { kind, group }, (opened, pending));
        }
        Ok(Self { open })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ClosingV2 {
    alert: AlertSummaryV2,
    /// Targets, `channel` or `channel:address`.
    #[serde(default)]
    notified: BTreeSet<String>,
}

/// `state`: the book's counters, throttle, open groups and resolved episodes waiting for
/// their group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookStateRecordV2 {
    #[serde(default)]
    next_seq: u64,
    #[serde(default)]
    throttle: ThrottleV2,
    #[serde(default)]
    grouper: GrouperV2,
    #[serde(default)]
    closing: BTreeMap<String, ClosingV2>,
}

impl Record for BookStateRecordV2 {
    type Domain = BookState;
    const KIND: RecordKind = RecordKind::State;

    fn of(s: &BookState) -> Self {
        Self {
            next_seq: s.next_seq,
            throttle: (&s.throttle).into(),
            grouper: (&s.grouper).into(),
            closing: s
                .closing
                .iter()
                .map(|(incident, c)| {
                    let closing = ClosingV2 {
                        alert: (&c.alert).into(),
                        notified: target_names(&c.notified),
                    };
                    (incident.to_string(), closing)
                })
                .collect(),
        }
    }

    fn into_domain(self) -> Result<BookState, RecordError> {
        let mut closing = BTreeMap::new();
        for (incident, c) in self.closing {
            let c = Closing {
                alert: c.alert.into(),
                notified: targets(c.notified)?,
            };
            closing.insert(incident.into(), c);
        }
        Ok(BookState {
            next_seq: self.next_seq,
            throttle: self.throttle.try_into()?,
            grouper: self.grouper.try_into()?,
            closing,
        })
    }
}

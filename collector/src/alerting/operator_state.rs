//! What operators told one collector of an HA pair, shared with the other: silences (with their
//! expiry) and acknowledgements. Shared as state, merged so that both books converge whatever
//! order the answers come in:
//! - a silence is known by its id; one the peer has and this book lacks is added, unless it
//!   already ended (an old silence this book let go is not brought back);
//! - for a silence both hold, the earlier end wins: expiring is the only change a silence gets,
//!   and it only moves the end earlier;
//! - an acknowledgement is applied to the same alert when it fires here in the same episode
//!   (fired within [`SAME_EPISODE_MS`] of the peer's), and is not acknowledged yet.
//!
//! Pure: the service takes the document from the pair's poll and applies it to its book.

use super::book::AlertBook;
use super::ids::AlertId;
use super::lifecycle::AlertState;
use super::records::{Record, SilenceRecordV2};
use serde::{Deserialize, Serialize};

/// How far apart the two collectors may see the same episode fire: their rounds judge the same
/// samples moments apart, a lease at most apart around a restart.
const SAME_EPISODE_MS: i64 = 10 * 60_000;
/// How long an ended silence is still shared, so its expiry reaches the peer.
const ENDED_SHARED_MS: i64 = 60 * 60_000;

/// One collector's operator state, as the pair carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    /// As stored: the same versioned record, so the pair adds no format of its own.
    pub silences: Vec<SilenceRecordV2>,
    pub acknowledgements: Vec<SharedAck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedAck {
    pub alert: AlertId,
    /// When the acknowledged episode fired, on the sharing collector.
    pub fired_ms: i64,
    pub by: String,
}

/// What applying the peer's state changed here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub silences_added: usize,
    pub silences_expired: usize,
    pub acknowledged: usize,
}

impl OperatorState {
    /// The state of `book` to share at `now_ms`.
    pub fn of(book: &AlertBook, now_ms: i64) -> Self {
        let silences = book
            .silences()
            .filter(|s| s.ends_ms > now_ms - ENDED_SHARED_MS)
            .map(SilenceRecordV2::of)
            .collect();
        let acknowledgements = book
            .alerts()
            .filter_map(|alert| {
                let AlertState::Acknowledged { by, .. } = &alert.lifecycle.state else {
                    return None;
                };
                Some(SharedAck {
                    alert: alert.id.clone(),
                    fired_ms: alert.episode.as_ref()?.fired_ms,
                    by: by.clone(),
                })
            })
            .collect();
        Self {
            silences,
            acknowledgements,
        }
    }

    /// Merges the peer's state into `book` at `now_ms` (see the module header).
    pub fn apply_to(&self, book: &mut AlertBook, now_ms: i64) -> Applied {
        let mut applied = Applied::default();
        for shared in &self.silences {
            let Ok(shared) = shared.clone().into_domain() else {
                continue;
            };
            let held = book
                .silences()
                .find(|s| s.id == shared.id)
                .map(|s| s.ends_ms);
            // A silence the peer accepted compiles here too: same code, same rules.
            match held {
                None if shared.ends_ms > now_ms => {
                    applied.silences_added += usize::from(book.silence(shared).is_ok());
                }
                Some(ends) if shared.ends_ms < ends => {
                    let expired = book.expire_silence(&shared.id, shared.ends_ms);
                    applied.silences_expired += usize::from(expired.is_ok());
                }
                _ => {}
            }
        }
        for ack in &self.acknowledgements {
            let same_episode = book.alert(&ack.alert).is_some_and(|alert| {
                matches!(alert.lifecycle.state, AlertState::Firing { .. })
                    && alert
                        .episode
                        .as_ref()
                        .is_some_and(|e| (e.fired_ms - ack.fired_ms).abs() <= SAME_EPISODE_MS)
            });
            if same_episode && book.acknowledge(&ack.alert, &ack.by, now_ms).is_ok() {
                applied.acknowledged += 1;
            }
        }
        applied
    }
}

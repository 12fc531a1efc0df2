//! Where a batch stands in its spool's numbering, judged against the node's durable state (the
//! delivery contract in `proto/hcmon/v1/ingest.proto`). Pure: ingest asks under the node's lock
//! and writes the state it gets back in the same store write as the batch, so no other stream of
//! the node can move the state between the check and the write.

use super::IngestError;
use crate::storage::NodeSequence;

/// What to do with a batch, given where its sequence number falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Already durable here: ack it without storing it again.
    Repeat,
    /// Store it with the node's new `state`; `lost` numbers before it were declared skipped.
    Next { state: NodeSequence, lost: u64 },
}

/// Places batch `seq` (with its `skipped_from`, 0 when it declares nothing) after `state`.
/// Refused: a gap the batch does not declare, and a repeat of a number not held here (a
/// declared skip, or below the epoch's first number): acking either would ack unstored data.
pub fn place(
    state: &NodeSequence,
    seq: u64,
    skipped_from: u64,
    now_ms: i64,
) -> Result<Placement, IngestError> {
    let last = state.last_durable_seq;
    if seq == 0 {
        return Err(IngestError::ZeroSequence);
    }
    if seq <= last {
        return if seq >= state.durable_from {
            Ok(Placement::Repeat)
        } else {
            Err(IngestError::SequenceNotHeld {
                seq,
                durable_from: state.durable_from,
                last,
            })
        };
    }
    // `seq > last`, so `last + 1` cannot overflow.
    let next = last + 1;
    let lost = seq - next;
    if lost > 0 && (skipped_from == 0 || skipped_from > next) {
        return Err(IngestError::SequenceGap { seq, last });
    }
    Ok(Placement::Next {
        state: NodeSequence {
            spool_epoch: state.spool_epoch,
            last_durable_seq: seq,
            // Past a skip, only the run starting here is known to be whole.
            durable_from: if lost > 0 { seq } else { state.durable_from },
            lost_batches: state.lost_batches.saturating_add(lost),
            last_batch_at_ms: now_ms,
        },
        lost,
    })
}

/// The node's state once an agent registered with `spool_epoch`: unchanged for the epoch it
/// already knows; a new epoch (a new spool, or one whose numbering went backwards) holds nothing
/// yet and numbers from `first_seq` (1 when unset, as from agents older than the field), so
/// numbers below it are neither expected nor counted as lost.
pub fn registered(state: &NodeSequence, spool_epoch: u64, first_seq: u64) -> NodeSequence {
    if state.spool_epoch == spool_epoch {
        return *state;
    }
    let first = first_seq.max(1);
    NodeSequence {
        spool_epoch,
        last_durable_seq: first - 1,
        durable_from: first,
        ..*state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Refusal;

    const NOW: i64 = 1_700_000_000_000;

    fn at(last: u64, durable_from: u64) -> NodeSequence {
        NodeSequence {
            spool_epoch: 7,
            last_durable_seq: last,
            durable_from,
            lost_batches: 0,
            last_batch_at_ms: 0,
        }
    }

    /// Feeds `(seq, skipped_from)` in order from a fresh epoch; returns what each became: "stored",
    /// "repeat" or the refusal's metric reason, and the final state.
    fn run(batches: &[(u64, u64)]) -> (Vec<&'static str>, NodeSequence) {
        let mut state = registered(&NodeSequence::default(), 7, 1);
        let outcomes = batches
            .iter()
            .map(
                |&(seq, skipped_from)| match place(&state, seq, skipped_from, NOW) {
                    Ok(Placement::Next { state: next, .. }) => {
                        state = next;
                        "stored"
                    }
                    Ok(Placement::Repeat) => "repeat",
                    Err(error) => error.reason(),
                },
            )
            .collect();
        (outcomes, state)
    }

    #[test]
    fn out_of_order_numbers_are_refused_not_acked() {
        // The sequence after batches 1 and 2: 5, 3, 4, 6, 2^63, 7 were all acked, while 3,
        // 4 and 7 were taken for repeats and dropped. Now every ack is for a stored batch.
        let (outcomes, state) = run(&[
            (1, 0),
            (2, 0),
            (5, 0),
            (3, 0),
            (4, 0),
            (6, 0),
            (1 << 63, 0),
            (7, 0),
        ]);
        assert_eq!(
            outcomes,
            [
                "stored",
                "stored",
                "sequence_gap",
                "stored",
                "stored",
                "sequence_gap",
                "sequence_gap",
                "sequence_gap"
            ]
        );
        assert_eq!(state.last_durable_seq, 4);
    }

    #[test]
    fn each_number_is_stored_once_in_order() {
        let (outcomes, state) = run(&[(1, 0), (2, 0), (2, 0), (1, 0), (3, 0)]);
        assert_eq!(outcomes, ["stored", "stored", "repeat", "repeat", "stored"]);
        assert_eq!((state.last_durable_seq, state.lost_batches), (3, 0));
    }

    #[test]
    fn a_jump_is_refused_and_later_batches_still_stored() {
        // The attack: one batch far ahead used to turn every later batch into a "repeat".
        let (outcomes, state) = run(&[(1, 0), (1_000_000_000_000_000, 0), (2, 0), (3, 0)]);
        assert_eq!(outcomes, ["stored", "sequence_gap", "stored", "stored"]);
        assert_eq!(state.last_durable_seq, 3);
    }

    #[test]
    fn a_declared_skip_is_stored_and_counted_as_lost() {
        // Batches 3 to 5 were dropped by a full spool; 6 says so.
        let (outcomes, state) = run(&[(1, 0), (2, 0), (6, 3), (7, 0)]);
        assert_eq!(outcomes, ["stored", "stored", "stored", "stored"]);
        assert_eq!((state.last_durable_seq, state.lost_batches), (7, 3));
        // A declaration reaching further back than needed is fine (another stream may have
        // stored some of the numbers meanwhile); one that leaves numbers unexplained is not.
        let (outcomes, state) = run(&[(1, 0), (2, 0), (6, 1)]);
        assert_eq!(outcomes, ["stored", "stored", "stored"]);
        assert_eq!(state.lost_batches, 3);
        let (outcomes, _) = run(&[(1, 0), (2, 0), (6, 4)]);
        assert_eq!(outcomes, ["stored", "stored", "sequence_gap"]);
    }

    #[test]
    fn only_numbers_held_here_are_acked_as_repeats() {
        let (outcomes, state) = run(&[(1, 0), (5, 2), (6, 0), (6, 0), (5, 0), (3, 0), (1, 0)]);
        assert_eq!(
            outcomes,
            [
                "stored",
                "stored",
                "stored",
                "repeat",
                "repeat",
                "sequence_not_held",
                "sequence_not_held"
            ],
            "3 was declared skipped; 1 is held but before the skip, so it cannot be vouched for"
        );
        assert_eq!(state.durable_from, 5);
    }

    #[test]
    fn a_new_epoch_starts_at_its_first_number() {
        let old = at(200, 1);
        assert_eq!(
            registered(&old, 7, 91),
            old,
            "a known epoch keeps its state"
        );
        let new = registered(&old, 8, 91);
        assert_eq!((new.spool_epoch, new.last_durable_seq), (8, 90));
        assert!(matches!(
            place(&new, 91, 0, NOW),
            Ok(Placement::Next { lost: 0, .. })
        ));
        let err = place(&new, 90, 0, NOW).unwrap_err();
        assert_eq!(err.refusal(), Refusal::OutOfSequence, "{err}");
        let unset = registered(&old, 9, 0);
        assert_eq!((unset.last_durable_seq, unset.durable_from), (0, 1));
    }

    #[test]
    fn refusals_explain_themselves() {
        let gap = place(&at(5, 1), 9, 0, NOW).unwrap_err();
        assert_eq!(gap.refusal(), Refusal::OutOfSequence);
        assert_eq!(
            gap.seq(),
            None,
            "a batch out of sequence must not be set aside"
        );
        let text = gap.to_string();
        for needle in [
            "batch 9",
            "holds (5)",
            "batches 6 to 8 are missing",
            "skipped_from",
        ] {
            assert!(text.contains(needle), "{text:?} lacks {needle:?}");
        }
        let held = place(&at(9, 6), 2, 0, NOW).unwrap_err();
        assert!(held.to_string().contains("holds 6 to 9"), "{held}");
        assert_eq!(
            place(&at(0, 1), 0, 0, NOW).unwrap_err().reason(),
            "zero_sequence"
        );
    }
}

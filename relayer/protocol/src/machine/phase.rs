//! An epoch's phases at one member, as enums: where its own block stands ([`Proposing`]) and
//! where its submission stands ([`Submission`]). Each replaces booleans whose combinations
//! could contradict each other (proposing and proposed at once, a grace period over that
//! was never armed, a submission in flight before the slot).

use super::Proposal;

/// This member's own block of an epoch.
#[derive(Debug, Default)]
pub(crate) enum Proposing {
    /// Not proposing yet: fewer than k usable observations, or not this member's turn.
    #[default]
    Gathering,
    /// k observations held; more are awaited until the grace timer fires.
    Grace,
    /// A backup proposer whose grace is over waits for the lead: it proposes only if the
    /// epoch is not on chain at `until_ms`. Storing its decision to echo the lead's block moves
    /// `until_ms` to `2 x wait_ms` after that decision (the lead needs time to certify and
    /// submit), once; so does such a decision stored before the standby began.
    Standby {
        /// When the wait is over.
        until_ms: u64,
        /// The wait's length, kept for the extension.
        wait_ms: u64,
        /// Whether the extension was made.
        extended: bool,
    },
    /// A backup's wait is over and the chain is being read: if the epoch is not there, it
    /// proposes.
    CheckingChain,
    /// Its turn has come (grace over, or a backup's wait over with the epoch not on chain): it
    /// proposes as soon as it may.
    Due,
    /// The decision to sign its block is being stored (back to `Due` if the write fails).
    Storing,
    /// Proposed: echoes gather into a certificate (boxed: the other phases are empty).
    Proposed(Box<Proposal>),
}

impl Proposing {
    /// The proposal, once made.
    pub(crate) fn proposal(&self) -> Option<&Proposal> {
        match self {
            Proposing::Proposed(proposal) => Some(proposal.as_ref()),
            _ => None,
        }
    }

    /// The proposal, once made, to add echoes or the certificate to.
    pub(crate) fn proposal_mut(&mut self) -> Option<&mut Proposal> {
        match self {
            Proposing::Proposed(proposal) => Some(proposal.as_mut()),
            _ => None,
        }
    }

    /// Whether a block is proposed or being stored: no other is made.
    pub(crate) fn started(&self) -> bool {
        matches!(self, Proposing::Storing | Proposing::Proposed(_))
    }
}

/// This member's submission of its certificate for an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Submission {
    /// Before this member's staggered submission slot (the race policy does not wait for it).
    #[default]
    BeforeSlot,
    /// It may submit once certified, not before `not_before_ms` (backing off after
    /// `failures` failed submissions).
    Open {
        /// Earliest time of the next attempt.
        not_before_ms: u64,
        /// Failed attempts so far.
        failures: u32,
    },
    /// A submission is in flight; `failures` before it.
    InFlight {
        /// Failed attempts before this one.
        failures: u32,
    },
}

impl Submission {
    /// The staggered slot has come.
    pub(crate) fn reach_slot(&mut self) {
        if *self == Submission::BeforeSlot {
            *self = Submission::Open {
                not_before_ms: 0,
                failures: 0,
            };
        }
    }

    /// Whether a submission is in flight.
    pub(crate) fn in_flight(&self) -> bool {
        matches!(self, Submission::InFlight { .. })
    }

    /// Failed attempts so far.
    pub(crate) fn failures(&self) -> u32 {
        match *self {
            Submission::BeforeSlot => 0,
            Submission::Open { failures, .. } | Submission::InFlight { failures } => failures,
        }
    }

    /// Whether a certified member may submit at `now_ms`: its slot has come (or `race`), none
    /// is in flight, and it is not backing off.
    pub(crate) fn may_submit(&self, race: bool, now_ms: u64) -> bool {
        match *self {
            Submission::BeforeSlot => race,
            Submission::Open { not_before_ms, .. } => now_ms >= not_before_ms,
            Submission::InFlight { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_moves_through_slot_flight_and_backoff() {
        let mut submission = Submission::default();
        assert!(!submission.may_submit(false, 0));
        assert!(
            submission.may_submit(true, 0),
            "race does not wait for a slot"
        );
        submission.reach_slot();
        assert!(submission.may_submit(false, 0));
        submission = Submission::InFlight { failures: 0 };
        assert!(submission.in_flight() && !submission.may_submit(true, u64::MAX));
        submission.reach_slot();
        assert!(submission.in_flight(), "a slot never interrupts a flight");
        submission = Submission::Open {
            not_before_ms: 10,
            failures: 1,
        };
        assert!(!submission.may_submit(false, 9) && submission.may_submit(false, 10));
        assert_eq!(submission.failures(), 1);
    }
}

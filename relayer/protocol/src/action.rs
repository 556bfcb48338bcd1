//! What the protocol asks its driver to do, what must be durable first, and why inputs are
//! refused.

use crate::aggregate::AggregateError;
use crate::official::{OfficialEpoch, OfficialSource};
use crate::verify::VerifyError;
use crate::{Certificate, Hash, MemberIndex, Message, Observation};

/// One thing for the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send to one member.
    Send {
        /// Recipient.
        to: MemberIndex,
        /// The message.
        message: Message,
    },
    /// Send to every other member.
    Broadcast {
        /// The message.
        message: Message,
    },
    /// Persist, then answer with [`crate::Input::Persisted`] (or
    /// [`crate::Input::PersistFailed`]).
    Persist {
        /// Id to acknowledge.
        id: u64,
        /// The record.
        record: PersistRecord,
    },
    /// Fire [`crate::Input::Timer`] at `at_ms` (same clock as `now_ms`).
    SetTimer {
        /// When.
        at_ms: u64,
        /// Which.
        timer: crate::Timer,
    },
    /// Read this member's averages of an ended epoch; answer with [`crate::Input::Measured`].
    Measure {
        /// The epoch.
        epoch: u64,
    },
    /// Read the contract's record of the epoch; answer with [`crate::Input::ChainRecord`].
    ReadChain {
        /// The epoch.
        epoch: u64,
    },
    /// Submit the certificate once block time has passed the epoch's end; answer with
    /// [`crate::Input::Submitted`].
    Submit {
        /// What to submit.
        certificate: Certificate,
    },
    /// Fetch the winner's copy of an epoch from its API; answer with
    /// [`crate::Input::WinnerCopy`].
    FetchOfficial {
        /// The epoch.
        epoch: u64,
        /// The winner.
        from: MemberIndex,
    },
    /// This member's block is certified (for storage and metrics).
    Certified {
        /// The certificate.
        certificate: Certificate,
    },
    /// The epoch's official data is stored: the epoch is done on this node.
    Final {
        /// The epoch.
        epoch: u64,
        /// Where the stored copy came from.
        source: OfficialSource,
    },
    /// An input was refused (for logs and metrics).
    Rejected {
        /// Sender, when it came from a member.
        from: Option<MemberIndex>,
        /// Why.
        reason: Rejection,
    },
}

/// Records that must be durable before what depends on them happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistRecord {
    /// This member's signed observation of an epoch: sent only once durable, so that after a
    /// restart the same bytes are sent again, never a second version.
    OwnObservation {
        /// The observation.
        observation: Observation,
    },
    /// This member signs `data_hash` for `proposer`'s block of `epoch` under signer-set
    /// `signer_set_version`, and never another.
    EchoDecision {
        /// The epoch.
        epoch: u64,
        /// The version it signs under (a member that learned a rotation late may have worked on
        /// the epoch under the previous version too; those decisions are kept apart).
        signer_set_version: u32,
        /// The proposer (possibly this member).
        proposer: MemberIndex,
        /// What is signed.
        data_hash: Hash,
    },
    /// The official data of an epoch; the epoch is final once it is stored.
    Official {
        /// The data.
        official: OfficialEpoch,
        /// Where it came from.
        source: OfficialSource,
        /// This member's transaction, when its submission won.
        tx_ref: Option<String>,
    },
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The sender index is not in the signer set.
    NotAMember,
    /// A block whose proposer is not its sender.
    WrongSender,
    /// An epoch outside the working window (old replays, far future).
    EpochOutOfWindow {
        /// The epoch.
        epoch: u64,
    },
    /// Another signer-set version.
    WrongVersion {
        /// The version in the message.
        version: u32,
    },
    /// An observation author outside the signer set.
    UnknownAuthor {
        /// The index.
        author: MemberIndex,
    },
    /// Observation values that are unusable.
    InvalidValues(AggregateError),
    /// A signature that does not verify.
    BadSignature {
        /// Whose signature.
        signer: MemberIndex,
    },
    /// A second, different observation by the same author (excluded from blocks).
    Equivocation {
        /// The author.
        author: MemberIndex,
    },
    /// A block with fewer distinct authors than the observation threshold.
    TooFewAuthors {
        /// Distinct authors.
        got: usize,
        /// k.
        need: usize,
    },
    /// A block whose authors are not strictly ascending.
    UnsortedAuthors,
    /// An authors bitmap of the wrong length, or naming a non-member.
    BadBitmap,
    /// A block whose claimed data hash does not match the recomputed aggregate.
    AggregateMismatch,
    /// A second block of a proposer whose other block this member already echoed.
    ConflictingBlock {
        /// The proposer.
        proposer: MemberIndex,
    },
    /// An echo for a block this member did not propose.
    UnknownBlock,
    /// This member's own values do not cover the mixnode set.
    InvalidOwnValues(AggregateError),
    /// This member has no measurements for an ended epoch, so it does not observe it.
    NoMeasurements {
        /// The epoch.
        epoch: u64,
    },
    /// The contract's record names another epoch than the one asked for.
    RecordForAnotherEpoch {
        /// Asked for.
        asked: u64,
        /// In the record.
        got: u64,
    },
    /// The winner's copy does not verify; the contract's copy is stored instead.
    WinnerCopyInvalid {
        /// The epoch.
        epoch: u64,
        /// What failed.
        error: VerifyError,
    },
    /// The winner's copy could not be fetched; the contract's copy is stored instead.
    WinnerUnreachable {
        /// The epoch.
        epoch: u64,
        /// What the driver saw.
        reason: String,
    },
    /// The store could not write the official data; retried at the next re-send round.
    OfficialNotStored {
        /// The epoch.
        epoch: u64,
    },
}

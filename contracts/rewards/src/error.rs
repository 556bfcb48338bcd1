//! Every way the contract refuses a message.

use cosmwasm_std::{StdError, VerificationError};
use thiserror::Error;

use crate::digest::DigestError;
use crate::packing::PackingError;

/// The contract's one error type. It derives `PartialEq`, so tests compare variants.
#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    /// Storage or serialization failure, as its text (cosmwasm-std 3's `StdError` is not
    /// comparable).
    #[error("{0}")]
    Std(String),

    /// The crypto API failed for a reason other than a bad signature.
    #[error("signature verification failed: {0}")]
    Verification(#[from] VerificationError),

    /// A digest field was too long to encode.
    #[error("{0}")]
    Digest(#[from] DigestError),

    /// Only the admin may do this.
    #[error("unauthorized: only the admin may {action}")]
    Unauthorized {
        /// What was attempted.
        action: String,
    },

    /// The epoch is already stored; checked before any other work.
    #[error("epoch {epoch} was already submitted by {submitter}")]
    EpochAlreadySubmitted {
        /// The epoch.
        epoch: u64,
        /// Who submitted it first.
        submitter: String,
    },

    /// The epoch has not ended by block time.
    #[error("epoch {epoch} ends at {ends_at}; block time is {now}")]
    EpochNotEnded {
        /// The epoch.
        epoch: u64,
        /// Unix second it ends.
        ends_at: u64,
        /// Block time, unix seconds.
        now: u64,
    },

    /// The epoch number is so large that its time overflows.
    #[error("epoch {epoch} is out of range")]
    EpochOutOfRange {
        /// The epoch.
        epoch: u64,
    },

    /// The submission names a signer-set version other than the one in force for the epoch.
    #[error("epoch {epoch} is governed by signer set version {expected}, not {got}")]
    WrongSignerSetVersion {
        /// The epoch.
        epoch: u64,
        /// The version in force.
        expected: u32,
        /// The version submitted.
        got: u32,
    },

    /// The sender is not a member of the signer set in force for the epoch.
    #[error("{sender} is not a member of signer set version {version}")]
    NotASigner {
        /// The sender.
        sender: String,
        /// The version in force for the epoch.
        version: u32,
    },

    /// No signer set of that version exists.
    #[error("signer set version {version} does not exist")]
    UnknownSignerSetVersion {
        /// The version asked for.
        version: u32,
    },

    /// A malformed packed reward stream.
    #[error("invalid packed rewards: {0}")]
    Packing(#[from] PackingError),

    /// Fewer signatures than the threshold.
    #[error("{got} signatures are below the threshold of {threshold}")]
    BelowThreshold {
        /// Signatures given.
        got: usize,
        /// Threshold of the signer set.
        threshold: u32,
    },

    /// Signer indices not strictly ascending (also catches duplicates).
    #[error(
        "signer indices must be strictly ascending: {index} at position {position} follows {previous}"
    )]
    SignerIndicesNotAscending {
        /// Position in the list.
        position: usize,
        /// The index there.
        index: u16,
        /// The index before it.
        previous: u16,
    },

    /// A signer index beyond the signer set.
    #[error("signer index {index} is out of range for {members} members")]
    SignerIndexOutOfRange {
        /// The index.
        index: u16,
        /// Size of the signer set.
        members: usize,
    },

    /// Packed signatures whose length is not a whole number of records.
    #[error("packed signatures are {len} bytes, not a multiple of the {record_len}-byte record")]
    SignaturesLength {
        /// Bytes given.
        len: usize,
        /// Bytes per record.
        record_len: usize,
    },

    /// A signature that does not verify over the canonical digest.
    #[error("signature of signer {index} does not verify")]
    InvalidSignature {
        /// Signer index of the first bad signature.
        index: u16,
    },

    /// A signer set with no members or more than [`crate::rules::MAX_MEMBERS`].
    #[error("invalid signer set: needs 1 to {max} members, got {got}")]
    SignerSetSize {
        /// Members given.
        got: usize,
        /// The cap.
        max: usize,
    },

    /// A signer set whose stored form exceeds [`crate::rules::MAX_SIGNER_SET_BYTES`].
    #[error(
        "invalid signer set: {bytes} bytes stored, at most {max} (shorten the endpoints or use fewer members)"
    )]
    SignerSetTooLarge {
        /// Bytes the set would take.
        bytes: usize,
        /// The cap.
        max: usize,
    },

    /// A member key that is not 32 bytes.
    #[error("invalid signer set: member {index}: ed25519 key is {len} bytes, expected 32")]
    MemberKeyLength {
        /// The member's position.
        index: usize,
        /// Its length.
        len: usize,
    },

    /// A member key that decodes to no curve point.
    #[error("invalid signer set: member {index}: ed25519 key is not a curve point")]
    MemberKeyNotOnCurve {
        /// The member's position.
        index: usize,
    },

    /// A member key in a second encoding of its point.
    #[error("invalid signer set: member {index}: ed25519 key is not canonically encoded")]
    MemberKeyNotCanonical {
        /// The member's position.
        index: usize,
    },

    /// A member key of small order, whose signatures anyone can forge.
    #[error("invalid signer set: member {index}: ed25519 key has small order")]
    MemberKeySmallOrder {
        /// The member's position.
        index: usize,
    },

    /// A member key with a torsion component: not a key any signer generates, and one of up
    /// to eight encodings of one secret's signatures, which would defeat the duplicate check.
    #[error("invalid signer set: member {index}: ed25519 key has a torsion component")]
    MemberKeyMixedOrder {
        /// The member's position.
        index: usize,
    },

    /// Two members with one ed25519 key.
    #[error("invalid signer set: member {index} repeats an ed25519 key")]
    DuplicateMemberKey {
        /// The later member's position.
        index: usize,
    },

    /// A member address the chain's API refuses.
    #[error("invalid signer set: member {index}: address {address:?} is invalid")]
    InvalidMemberAddress {
        /// The member's position.
        index: usize,
        /// The address given.
        address: String,
    },

    /// Two members with one chain address.
    #[error("invalid signer set: member {index} repeats address {address}")]
    DuplicateMemberAddress {
        /// The later member's position.
        index: usize,
        /// The address.
        address: String,
    },

    /// An `api_url` that is not an http(s) URL of bounded length.
    #[error(
        "invalid signer set: member {index}: api_url must be an http(s) URL of at most {max_len} bytes"
    )]
    InvalidApiUrl {
        /// The member's position.
        index: usize,
        /// Longest accepted.
        max_len: usize,
    },

    /// A `p2p_multiaddr` that is not a multiaddress of bounded length.
    #[error(
        "invalid signer set: member {index}: p2p_multiaddr must be a multiaddress (starting with '/') of at most {max_len} bytes"
    )]
    InvalidMultiaddr {
        /// The member's position.
        index: usize,
        /// Longest accepted.
        max_len: usize,
    },

    /// A threshold that breaks `3t > n` and `t <= n`.
    #[error("invalid threshold {threshold} for {members} members: need 3t > n and t <= n")]
    InvalidThreshold {
        /// Threshold given.
        threshold: u32,
        /// Members in the set.
        members: usize,
    },

    /// An epoch clock whose epochs last zero seconds.
    #[error("invalid epoch clock: epoch_length_secs must be at least 1")]
    ZeroEpochLength,

    /// A bad maximum mixnode count.
    #[error("max_mixnodes_per_epoch must be between 1 and {cap}, got {got}")]
    InvalidMaxMixnodes {
        /// Value given.
        got: u32,
        /// Hard cap.
        cap: u32,
    },

    /// A signer-set rotation that does not start in the future.
    #[error("effective_from_epoch {effective_from_epoch} must be after epoch {earliest_excluded}")]
    RotationNotInFuture {
        /// Epoch requested.
        effective_from_epoch: u64,
        /// The current epoch, or the start of the latest scheduled version, whichever is later.
        earliest_excluded: u64,
    },

    /// A rotation sooner than the configured minimum delay.
    #[error(
        "effective_from_epoch {effective_from_epoch} is sooner than the minimum delay of {delay} epochs allows (earliest {earliest})"
    )]
    RotationTooSoon {
        /// Epoch requested.
        effective_from_epoch: u64,
        /// The configured delay.
        delay: u64,
        /// Earliest epoch the delay allows.
        earliest: u64,
    },

    /// A rotation scheduled further ahead than the horizon allows.
    #[error(
        "effective_from_epoch {effective_from_epoch} is beyond the latest allowed epoch {latest_allowed}"
    )]
    RotationTooFar {
        /// Epoch requested.
        effective_from_epoch: u64,
        /// Latest epoch allowed.
        latest_allowed: u64,
    },

    /// A rotation delay above the cap.
    #[error("min_rotation_delay_epochs must be at most {max}, got {got}")]
    InvalidRotationDelay {
        /// Value given.
        got: u64,
        /// The cap.
        max: u64,
    },

    /// A stored signer set holds a key that v2 refuses; migrating would keep a forgeable member.
    #[error("cannot migrate: signer set version {version}: {reason}")]
    MigrateInvalidMemberKey {
        /// The version.
        version: u32,
        /// The key check that failed.
        reason: String,
    },

    /// Funds attached to a message that takes none.
    #[error("this contract takes no funds")]
    FundsNotAccepted,

    /// A query for stored data that the storage does not hold (a broken invariant).
    #[error("stored data of epoch {epoch} is missing or corrupt")]
    CorruptEpoch {
        /// The epoch.
        epoch: u64,
    },

    /// Migration from another contract.
    #[error("cannot migrate from contract {found}")]
    MigrateWrongContract {
        /// Name stored in cw2.
        found: String,
    },

    /// Migration to an older version.
    #[error("cannot migrate from version {from} to older version {to}")]
    MigrateDowngrade {
        /// Version stored.
        from: String,
        /// Version of this code.
        to: String,
    },
}

impl From<StdError> for ContractError {
    fn from(err: StdError) -> Self {
        Self::Std(err.to_string())
    }
}

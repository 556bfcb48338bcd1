//! The relayer protocol as a pure, synchronous state machine, and the node core around it:
//! the one finalization rule and the one verification of an epoch's data.
//!
//! [`Protocol::handle`] takes the current time (milliseconds, supplied by the driver: the
//! wall clock in a node, a virtual clock in the simulator) and one [`Input`] (a peer message, a
//! timer, a persist acknowledgement, a chain answer, the winner's copy, an epoch's own
//! measurements) and returns the [`Action`]s to perform (send, persist, set a timer, measure,
//! read or submit to the chain, fetch from the winner). It has no I/O, no clock and no
//! randomness, so a whole network of them can be driven deterministically, byzantine inputs
//! included, and the node and the simulator run exactly the same decisions.
//!
//! One epoch, as seen by member `i` (`docs/design.md` has the full rules):
//! 1. The epoch-end timer fires: measure, sign an observation under the observation domain tag
//!    and send it to every member.
//! 2. Once `k` observations are held (own included), wait up to the grace period for the rest,
//!    then propose a block: references to the observations and the hash of their lower-median
//!    aggregate. The decision to sign it is persisted before the block is sent.
//! 3. A member validates a block (members, `>= k` distinct authors, signatures, recomputed
//!    aggregate, one block per proposer and epoch), persists its echo decision, then answers
//!    with an echo: its signature over the contract's canonical digest.
//! 4. `t` echoes make a certificate, which is submitted according to the [`SubmitPolicy`].
//! 5. Once the contract holds the epoch, the official copy is stored (module `finality`); only
//!    then is the epoch done.

mod action;
mod aggregate;
mod config;
mod crypto;
mod finality;
mod input;
mod machine;
mod messages;
mod names;
mod official;
mod planted;
mod release_guard;
mod rotation;
mod schedule;
mod signer_set;
mod verify;
pub mod wire;

pub use action::{Action, PersistRecord, Rejection};
pub use aggregate::{AggregateError, lower_median, validate_values};
pub use config::{
    ChainContext, ConfigError, ProtocolConfig, SubmitPolicy, default_observation_threshold,
    observation_threshold_for,
};
pub use crypto::{Keypair, SignatureCheck, echo_digest, observation_digest, verify_signature};
pub use input::{FetchFailed, Input, Timer};
pub use machine::{NewError, Protocol, ProtocolMetrics, RestoredState, StoredDecision};
pub use messages::{
    Block, BlockDigest, Certificate, Echo, Message, Observation, ObservationRef, holding_bitmap,
    holds, refs_hash,
};
pub use names::{UnknownName, parse_variant};
pub use nym_rewards::msg::MixnodeReward;
pub use nym_rewards::rules::{self, default_threshold, faulty_tolerated};
pub use official::{OfficialEpoch, OfficialSource};
pub use planted::{PLANTED_BUGS_AVAILABLE, PlantedBug};
pub use rotation::{Engine, PeerIndex};
pub use schedule::{
    is_backup_proposer, lead_position, proposing_from_ms, submission_rank, submission_slot_ms,
};
pub use signer_set::{Signer, SignerSet, SignerSetError};
pub use verify::{
    Certified, NotAccepted, NotCertified, SignedData, Verdict, VerifyError, check_accepted,
    check_certified,
};

/// A member's position in the signer set.
pub type MemberIndex = u16;
/// A sha256 hash.
pub type Hash = [u8; 32];

//! The relayer protocol as a pure, synchronous state machine.
//!
//! [`Protocol::handle`] takes the current time (milliseconds, supplied by the driver: the
//! wall clock in a node, a virtual clock in the simulator) and one [`Input`] (a peer message, a
//! timer, a persist acknowledgement, a chain answer, an epoch's own measurements) and returns
//! the [`Action`]s to perform (send, persist, set a timer, query or submit to the chain). It has
//! no I/O, no clock and no randomness, so a whole network of them can be driven
//! deterministically, byzantine inputs included.
//!
//! One epoch, as seen by member `i`:
//! 1. `EpochEnded` with its per-mixnode averages: sign an observation under the observation
//!    domain tag and send it to every member.
//! 2. Once `k` observations are held (own included), wait up to the grace period for the rest,
//!    then propose a block: references to the observations and the hash of their lower-median
//!    aggregate. The decision to sign it is persisted before the block is sent.
//! 3. A member validates a block (members, `>= k` distinct authors, signatures, recomputed
//!    aggregate, one block per proposer and epoch), persists its echo decision, then answers
//!    with an echo: its signature over the contract's canonical digest.
//! 4. `t` echoes make a certificate, which is submitted according to the [`SubmitPolicy`].

mod aggregate;
mod config;
mod crypto;
mod machine;
mod messages;
mod schedule;

pub use aggregate::{AggregateError, lower_median, validate_values};
pub use config::{
    ConfigError, ProtocolConfig, SubmitPolicy, UnknownPolicy, default_observation_threshold,
    faulty_tolerated,
};
pub use crypto::{Keypair, SignatureCheck, echo_digest, observation_digest, verify_signature};
pub use machine::{
    Action, Input, PersistRecord, Protocol, ProtocolMetrics, Rejection, RestoredState, Timer,
};
pub use messages::{Block, Certificate, Echo, Message, Observation, ObservationRef};
pub use nym_rewards::msg::MixnodeReward;
pub use schedule::{submission_rank, submission_slot_ms};

/// A member's position in the signer set.
pub type MemberIndex = u16;
/// A sha256 hash.
pub type Hash = [u8; 32];

//! Everything that can happen to a protocol instance, and the timers it sets.

use nym_rewards::msg::EpochRewardsResponse;

use crate::official::OfficialEpoch;
use crate::{MemberIndex, Message, MixnodeReward};

/// One input to [`crate::Protocol::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The instance runs (first start or restart): arm the timers and resume the recent
    /// epochs that are not final. Fed once, right after [`crate::Protocol::new`].
    Start,
    /// Answer to [`crate::Action::Measure`]: this member's per-mixnode averages for the epoch,
    /// `None` when it has no measurements for it.
    Measured {
        /// The epoch.
        epoch: u64,
        /// Averages in basis points, one per configured mixnode, ascending.
        values: Option<Vec<MixnodeReward>>,
    },
    /// A message from an authenticated member.
    Message {
        /// Sender, as the transport authenticated it.
        from: MemberIndex,
        /// The message.
        message: Message,
    },
    /// A timer set by [`crate::Action::SetTimer`] fired.
    Timer(Timer),
    /// The store durably holds the record of [`crate::Action::Persist`] with this id.
    Persisted {
        /// The persist id.
        id: u64,
    },
    /// The store could not write the record of [`crate::Action::Persist`] with this id.
    PersistFailed {
        /// The persist id.
        id: u64,
    },
    /// Answer to [`crate::Action::ReadChain`]: the contract's record of the epoch, `None`
    /// while it is not stored. A chain that cannot be read gives no answer (the next re-send
    /// round asks again).
    ChainRecord {
        /// The epoch.
        epoch: u64,
        /// The record, boxed: it carries the rewards.
        record: Option<Box<EpochRewardsResponse>>,
    },
    /// Outcome of [`crate::Action::Submit`]: the contract's record after the attempt (by
    /// whoever won), and this member's transaction when it was included.
    Submitted {
        /// The epoch.
        epoch: u64,
        /// The record, `None` when the epoch is still not stored.
        record: Option<Box<EpochRewardsResponse>>,
        /// This member's transaction hash, when included.
        tx_ref: Option<String>,
    },
    /// Answer to [`crate::Action::FetchOfficial`]: the winner's copy, or why there is none.
    WinnerCopy {
        /// The epoch.
        epoch: u64,
        /// The copy as served, unverified.
        copy: Result<Box<OfficialEpoch>, FetchFailed>,
    },
}

/// Why the winner's copy could not be fetched (unreachable, error answer, undecodable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailed {
    /// What the driver saw.
    pub reason: String,
}

/// Timers the protocol sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// The epoch has ended: measure it.
    EpochEnd {
        /// The epoch.
        epoch: u64,
    },
    /// The grace period for more observations of an epoch is over.
    Grace {
        /// The epoch.
        epoch: u64,
    },
    /// A backup proposer's wait for its group's lead is over (see
    /// [`crate::schedule`]): unless the epoch is on chain, it proposes.
    Standby {
        /// The epoch.
        epoch: u64,
    },
    /// This member's staggered submission slot for an epoch has come (armed when it was
    /// certified).
    SubmitSlot {
        /// The epoch.
        epoch: u64,
    },
    /// The pause after a failed submission is over.
    SubmitRetry {
        /// The epoch.
        epoch: u64,
    },
    /// Re-send what unfinished epochs need and retry stalled finalization.
    Resend,
}

impl Timer {
    /// The epoch the timer belongs to; `None` for the re-send round, which covers them all.
    pub fn epoch(&self) -> Option<u64> {
        match *self {
            Timer::EpochEnd { epoch }
            | Timer::Grace { epoch }
            | Timer::Standby { epoch }
            | Timer::SubmitSlot { epoch }
            | Timer::SubmitRetry { epoch } => Some(epoch),
            Timer::Resend => None,
        }
    }
}

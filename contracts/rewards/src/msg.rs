//! Messages and responses: the contract's public interface.

use cosmwasm_schema::{QueryResponses, cw_serde};
use cosmwasm_std::{Addr, Binary, HexBinary, Timestamp};

pub use crate::clock::EpochClock;

/// One mixnode's reward datum for an epoch.
#[cw_serde]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Copy, Eq, PartialOrd, Ord, Hash)]
pub struct MixnodeReward {
    /// Mixnode id.
    pub mix_id: u32,
    /// Uptime in basis points, 0..=10000.
    pub uptime_bp: u16,
}

/// A signer-set member as given to `instantiate` and `UpdateSignerSet`.
#[cw_serde]
pub struct MemberInput {
    /// ed25519 public key, 32 bytes.
    pub ed25519_pubkey: HexBinary,
    /// Chain account that submits for this member.
    pub address: String,
    /// Base URL of the member's HTTP API, e.g. `http://127.0.0.1:8001`.
    pub api_url: String,
    /// libp2p multiaddress of the member, e.g. `/ip4/127.0.0.1/tcp/9001`.
    pub p2p_multiaddr: String,
}

/// A validated signer-set member.
#[cw_serde]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Eq)]
pub struct Member {
    /// ed25519 public key, 32 bytes.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ed25519_pubkey: HexBinary,
    /// Chain account that submits for this member.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub address: Addr,
    /// Base URL of the member's HTTP API.
    pub api_url: String,
    /// libp2p multiaddress of the member.
    pub p2p_multiaddr: String,
}

/// One member's signature over the epoch digest.
#[cw_serde]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Eq)]
pub struct SignerSignature {
    /// Position of the member in the signer set.
    pub index: u16,
    /// ed25519 signature, 64 bytes.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub signature: HexBinary,
}

/// Instantiates the contract.
#[cw_serde]
pub struct InstantiateMsg {
    /// Admin; the sender when absent.
    pub admin: Option<String>,
    /// The epoch clock.
    pub clock: EpochClock,
    /// Signer set version 1, in force from epoch 0.
    pub members: Vec<MemberInput>,
    /// Signatures needed; default `floor(2n/3) + 1`.
    pub threshold: Option<u32>,
    /// Most mixnodes one epoch may carry.
    pub max_mixnodes_per_epoch: u32,
    /// Least number of epochs between a rotation and the first epoch the new set governs;
    /// default 0 (any future epoch).
    pub min_rotation_delay_epochs: Option<u64>,
}

/// Execute messages.
#[cw_serde]
pub enum ExecuteMsg {
    /// Stores the threshold-signed reward data of an ended epoch; the first valid one wins.
    SubmitEpoch {
        /// The epoch.
        epoch: u64,
        /// Signer-set version in force for the epoch.
        signer_set_version: u32,
        /// Rewards as a packed stream ([`crate::packing`]); the digest covers their
        /// fixed-width records ([`crate::records`]).
        rewards: Binary,
        /// Signature records `u16_be(index) || signature[64]`, strictly ascending by index.
        signatures: Binary,
    },
    /// Schedules a new signer set for epochs from `effective_from_epoch` on (admin only).
    UpdateSignerSet {
        /// The new members.
        members: Vec<MemberInput>,
        /// Signatures needed; default `floor(2n/3) + 1`.
        threshold: Option<u32>,
        /// First epoch the new set governs; must be in the future.
        effective_from_epoch: u64,
    },
    /// Hands the admin role to another address (admin only).
    UpdateAdmin {
        /// The new admin.
        admin: String,
    },
    /// Changes limits (admin only); absent fields keep their value.
    UpdateConfig {
        /// Most mixnodes one epoch may carry.
        max_mixnodes_per_epoch: Option<u32>,
        /// Least number of epochs between a rotation and the first epoch the new set governs.
        min_rotation_delay_epochs: Option<u64>,
    },
}

impl ExecuteMsg {
    /// A `SubmitEpoch` from rewards ascending by mix id and signatures ascending by index.
    pub fn submit_epoch(
        epoch: u64,
        signer_set_version: u32,
        rewards: &[MixnodeReward],
        signatures: &[SignerSignature],
    ) -> Self {
        Self::SubmitEpoch {
            epoch,
            signer_set_version,
            rewards: crate::packing::pack_rewards(rewards).into(),
            signatures: crate::records::encode_signatures(signatures).into(),
        }
    }
}

/// Query messages.
#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    /// Admin, clock and limits.
    #[returns(ConfigResponse)]
    Config {},
    /// A signer set; the latest scheduled version when `version` is absent.
    #[returns(SignerSetResponse)]
    SignerSet {
        /// Version to return.
        version: Option<u32>,
    },
    /// The signer set that governs `epoch`.
    #[returns(SignerSetResponse)]
    SignerSetForEpoch {
        /// The epoch.
        epoch: u64,
    },
    /// The stored data of one epoch, `null` while not submitted.
    #[returns(Option<EpochRewardsResponse>)]
    EpochRewards {
        /// The epoch.
        epoch: u64,
    },
    /// The stored data of one epoch as raw records (for large epochs), `null` while not
    /// submitted.
    #[returns(Option<PackedEpochRewardsResponse>)]
    EpochRewardsPacked {
        /// The epoch.
        epoch: u64,
    },
    /// A mixnode's uptime across stored epochs; scans at most `limit` epochs after `start_after`,
    /// fewer when they are large epochs migrated from v1 (a read budget per page).
    #[returns(MixnodeRewardsResponse)]
    MixnodeRewards {
        /// The mixnode.
        mix_id: u32,
        /// Exclusive lower bound on epochs.
        start_after: Option<u64>,
        /// Epochs to scan (default 10, at most 20).
        limit: Option<u32>,
    },
    /// The running epoch by block time and the latest stored one.
    #[returns(LatestEpochResponse)]
    LatestEpoch {},
    /// Summaries of stored epochs in ascending order.
    #[returns(EpochsResponse)]
    Epochs {
        /// Exclusive lower bound on epochs.
        start_after: Option<u64>,
        /// Page size (default 10, at most 30).
        limit: Option<u32>,
    },
}

/// Migrates the contract to this code.
#[cw_serde]
pub struct MigrateMsg {}

/// Answer to [`QueryMsg::Config`].
#[cw_serde]
pub struct ConfigResponse {
    /// The admin.
    pub admin: Addr,
    /// The epoch clock.
    pub clock: EpochClock,
    /// Most mixnodes per epoch.
    pub max_mixnodes_per_epoch: u32,
    /// Least number of epochs between a rotation and the first epoch the new set governs, in
    /// force at block time.
    pub min_rotation_delay_epochs: u64,
    /// A lowered delay not yet in force.
    pub pending_rotation_delay: Option<PendingDelay>,
    /// Latest signer-set version (possibly scheduled for a future epoch).
    pub latest_signer_set_version: u32,
}

/// A lowered rotation delay that takes effect once the delay it replaces has passed.
#[cw_serde]
#[derive(Copy, Eq)]
pub struct PendingDelay {
    /// The lower delay, in epochs.
    pub delay_epochs: u64,
    /// First epoch in which it applies.
    pub from_epoch: u64,
}

/// A signer set.
#[cw_serde]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Eq)]
pub struct SignerSetResponse {
    /// Version, from 1.
    pub version: u32,
    /// First epoch it governs.
    pub effective_from_epoch: u64,
    /// Signatures needed.
    pub threshold: u32,
    /// Members, in signer-index order.
    pub members: Vec<Member>,
}

/// The stored data of one epoch.
#[cw_serde]
#[derive(Eq)]
pub struct EpochRewardsResponse {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version that certified it.
    pub signer_set_version: u32,
    /// sha256 of the reward records.
    pub data_hash: HexBinary,
    /// Rewards, ascending by mix id.
    pub rewards: Vec<MixnodeReward>,
    /// The signatures, ascending by index.
    pub signatures: Vec<SignerSignature>,
    /// Who submitted it.
    pub submitter: Addr,
    /// Block height of the submission.
    pub height: u64,
    /// Block time of the submission.
    pub time: Timestamp,
}

/// The stored data of one epoch with its records as bytes.
#[cw_serde]
#[derive(Eq)]
pub struct PackedEpochRewardsResponse {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version that certified it.
    pub signer_set_version: u32,
    /// sha256 of `records`.
    pub data_hash: HexBinary,
    /// Fixed-width reward records `u32_be(mix_id) || u16_be(uptime_bp)`, ascending: the bytes
    /// the data hash covers.
    pub records: Binary,
    /// Signature records `u16_be(index) || signature[64]`, ascending by index.
    pub signatures: Binary,
    /// Who submitted it.
    pub submitter: Addr,
    /// Block height of the submission.
    pub height: u64,
    /// Block time of the submission.
    pub time: Timestamp,
}

/// One epoch's uptime of a mixnode.
#[cw_serde]
pub struct EpochUptime {
    /// The epoch.
    pub epoch: u64,
    /// Uptime in basis points.
    pub uptime_bp: u16,
}

/// Answer to [`QueryMsg::MixnodeRewards`].
#[cw_serde]
pub struct MixnodeRewardsResponse {
    /// The mixnode.
    pub mix_id: u32,
    /// Epochs in which it has a record.
    pub rewards: Vec<EpochUptime>,
    /// Pass as `start_after` for the next page; `None` when no epochs are left.
    pub next_start_after: Option<u64>,
}

/// Answer to [`QueryMsg::LatestEpoch`].
#[cw_serde]
pub struct LatestEpochResponse {
    /// Epoch running at block time; `None` before genesis.
    pub current_epoch: Option<u64>,
    /// Latest stored epoch.
    pub latest_submitted: Option<u64>,
}

/// A stored epoch without its records.
#[cw_serde]
pub struct EpochSummary {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version that certified it.
    pub signer_set_version: u32,
    /// sha256 of the reward records.
    pub data_hash: HexBinary,
    /// Who submitted it.
    pub submitter: Addr,
    /// Block height of the submission.
    pub height: u64,
    /// Block time of the submission.
    pub time: Timestamp,
    /// Number of mixnodes.
    pub mixnodes: u32,
    /// Number of signatures.
    pub signers: u32,
}

/// Answer to [`QueryMsg::Epochs`].
#[cw_serde]
pub struct EpochsResponse {
    /// Summaries, ascending.
    pub epochs: Vec<EpochSummary>,
}

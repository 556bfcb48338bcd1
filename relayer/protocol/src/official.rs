//! An epoch's official data as nodes store and serve it: the contract's record (rewards, data
//! hash, signatures, submitter, height), and where a node got its copy.

use cosmwasm_std::HexBinary;
use nym_rewards::msg::{EpochRewardsResponse, MixnodeReward, SignerSignature};
use serde::{Deserialize, Serialize};
use strum::{IntoStaticStr, VariantArray};

use crate::verify::SignedData;

/// Where a node's official copy of an epoch came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr, VariantArray,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum OfficialSource {
    /// This node's own submission won.
    Own,
    /// Fetched from the winner's API and verified.
    Peer,
    /// This node's own aggregate: it checked the accepted block (echoed or proposed it), and
    /// the contract's data hash is that of its aggregate, so nothing was fetched.
    Aggregate,
    /// Read from the contract (the winner was unreachable or served data that did not verify).
    Contract,
}

crate::derived_names!(OfficialSource, "official source");

/// The official data of an epoch: what the contract accepted, with its signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfficialEpoch {
    /// The epoch.
    pub epoch: u64,
    /// Signer-set version that certified it.
    pub signer_set_version: u32,
    /// sha256 of the reward records (hex).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub data_hash: HexBinary,
    /// Rewards, ascending by mix id.
    pub rewards: Vec<MixnodeReward>,
    /// Signatures with signer indices, ascending.
    pub signatures: Vec<SignerSignature>,
    /// Chain address of the submitter.
    pub submitter: String,
    /// Block height of the submission.
    pub height: u64,
}

impl OfficialEpoch {
    /// The signed part, for [`crate::check_certified`].
    pub fn signed(&self) -> SignedData<'_> {
        SignedData {
            epoch: self.epoch,
            signer_set_version: self.signer_set_version,
            data_hash: self.data_hash.as_slice(),
            rewards: &self.rewards,
            signatures: &self.signatures,
        }
    }
}

impl From<&EpochRewardsResponse> for OfficialEpoch {
    fn from(record: &EpochRewardsResponse) -> Self {
        Self {
            epoch: record.epoch,
            signer_set_version: record.signer_set_version,
            data_hash: record.data_hash.clone(),
            rewards: record.rewards.clone(),
            signatures: record.signatures.clone(),
            submitter: record.submitter.to_string(),
            height: record.height,
        }
    }
}

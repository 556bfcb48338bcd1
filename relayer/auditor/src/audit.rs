//! The auditor check of one node's copy of an epoch: certified by the signer set the contract
//! names for the record's version, and equal to the contract's record.

use nym_rewards::msg::{EpochRewardsResponse, SignerSetResponse};
use relayer_protocol::{
    ChainContext, OfficialEpoch, SignerSet, SignerSetError, Verdict, VerifyError,
};
use thiserror::Error;

/// Why a node's copy fails the audit.
#[derive(Debug, Clone, PartialEq, Eq, Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum AuditError {
    /// The node says it serves another chain or contract than the one audited (its
    /// `/v1/status`): its data, whatever it is, is not this deployment's.
    #[error("the node serves {node}, not the audited {audited}")]
    OtherDeployment {
        /// `chain_id / contract` the node names.
        node: String,
        /// `chain_id / contract` audited.
        audited: String,
    },
    /// The contract's signer set does not convert (never expected from a real contract).
    #[error("the contract's signer set: {0}")]
    SignerSet(#[from] SignerSetError),
    /// The signer set given is not the version of the record.
    #[error("the record was certified by signer set version {record}, not {given}")]
    SignerSetVersion {
        /// Of the record.
        record: u32,
        /// Of the set given.
        given: u32,
    },
    /// The copy is not certified or not the accepted data.
    #[error("{0}")]
    Verify(#[from] VerifyError),
}

impl AuditError {
    /// The failed check as a stable name (`other_deployment`, `signer_set_version`, or
    /// [`VerifyError::check`]): what front ends show and tests compare.
    pub fn check(&self) -> String {
        match self {
            AuditError::Verify(err) => err.check(),
            other => <&'static str>::from(other).to_string(),
        }
    }
}

fn deployment(chain: &ChainContext) -> String {
    format!("{} / {}", chain.chain_id, chain.contract)
}

/// Checks that the node's own account of its deployment (chain id and contract in its
/// `/v1/status`) is the one audited.
pub fn check_deployment(audited: &ChainContext, node: &ChainContext) -> Result<(), AuditError> {
    if audited == node {
        Ok(())
    } else {
        Err(AuditError::OtherDeployment {
            node: deployment(node),
            audited: deployment(audited),
        })
    }
}

/// Checks `copy` against the contract's `record` and the contract's signer `set` of the
/// record's version on `chain`.
pub fn audit_copy(
    chain: &ChainContext,
    set: &SignerSetResponse,
    record: &EpochRewardsResponse,
    copy: &OfficialEpoch,
) -> Result<Verdict, AuditError> {
    if set.version != record.signer_set_version {
        return Err(AuditError::SignerSetVersion {
            record: record.signer_set_version,
            given: set.version,
        });
    }
    let set = SignerSet::try_from(set)?;
    Ok(copy.verify(chain, &set, Some(record))?)
}

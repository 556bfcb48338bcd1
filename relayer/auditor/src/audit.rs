//! The auditor check of one node's copy of an epoch: certified by the signer set the contract
//! names for the record's version, and equal to the contract's record.

use nym_rewards::msg::{EpochRewardsResponse, SignerSetResponse};
use relayer_protocol::{
    ChainContext, OfficialEpoch, SignerSet, SignerSetError, Verdict, VerifyError,
};
use thiserror::Error;

/// Why a node's copy fails the audit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuditError {
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

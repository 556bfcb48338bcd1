//! Validation of signer sets and thresholds, and lookup of the version in force for an epoch.

use std::collections::BTreeSet;

use cosmwasm_std::{Api, Order, Storage};
use cw_storage_plus::Bound;

use crate::error::ContractError;
use crate::msg::{Member, MemberInput};
use crate::records::PUBKEY_LEN;
use crate::rules::{self, MAX_MEMBERS};
use crate::state::{SIGNER_SET_BY_START, SIGNER_SETS, SignerSet};

/// Longest api_url or p2p_multiaddr accepted.
pub const MAX_ENDPOINT_LEN: usize = 256;

/// Checks `3t > n` and `1 <= t <= n` ([`rules::threshold_is_valid`]).
pub fn validate_threshold(threshold: u32, members: usize) -> Result<(), ContractError> {
    if !rules::threshold_is_valid(threshold as usize, members) {
        return Err(ContractError::InvalidThreshold { threshold, members });
    }
    Ok(())
}

/// Validates members and threshold into a signer set of the given version.
pub fn build_signer_set(
    api: &dyn Api,
    version: u32,
    effective_from_epoch: u64,
    members: Vec<MemberInput>,
    threshold: Option<u32>,
) -> Result<SignerSet, ContractError> {
    if !rules::member_count_is_valid(members.len()) {
        return Err(ContractError::SignerSetSize {
            got: members.len(),
            max: MAX_MEMBERS,
        });
    }
    // At most MAX_MEMBERS, so the default threshold fits a u32.
    let threshold = threshold.unwrap_or(rules::default_threshold(members.len()) as u32);
    validate_threshold(threshold, members.len())?;

    let mut keys = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    let mut validated = Vec::with_capacity(members.len());
    for (index, member) in members.into_iter().enumerate() {
        let member = validate_member(api, index, member)?;
        if !keys.insert(member.ed25519_pubkey.to_vec()) {
            return Err(ContractError::DuplicateMemberKey { index });
        }
        if !addresses.insert(member.address.clone()) {
            return Err(ContractError::DuplicateMemberAddress {
                index,
                address: member.address.to_string(),
            });
        }
        validated.push(member);
    }
    Ok(SignerSet {
        version,
        effective_from_epoch,
        threshold,
        members: validated,
    })
}

fn validate_member(
    api: &dyn Api,
    index: usize,
    member: MemberInput,
) -> Result<Member, ContractError> {
    if member.ed25519_pubkey.len() != PUBKEY_LEN {
        return Err(ContractError::MemberKeyLength {
            index,
            len: member.ed25519_pubkey.len(),
        });
    }
    let address =
        api.addr_validate(&member.address)
            .map_err(|_| ContractError::InvalidMemberAddress {
                index,
                address: member.address.clone(),
            })?;
    let api_url_ok =
        member.api_url.starts_with("http://") || member.api_url.starts_with("https://");
    if !api_url_ok || member.api_url.len() > MAX_ENDPOINT_LEN {
        return Err(ContractError::InvalidApiUrl {
            index,
            max_len: MAX_ENDPOINT_LEN,
        });
    }
    if !member.p2p_multiaddr.starts_with('/') || member.p2p_multiaddr.len() > MAX_ENDPOINT_LEN {
        return Err(ContractError::InvalidMultiaddr {
            index,
            max_len: MAX_ENDPOINT_LEN,
        });
    }
    Ok(Member {
        ed25519_pubkey: member.ed25519_pubkey,
        address,
        api_url: member.api_url,
        p2p_multiaddr: member.p2p_multiaddr,
    })
}

/// The signer set in force for `epoch`: the newest version whose first epoch is <= `epoch`.
pub fn signer_set_for_epoch(storage: &dyn Storage, epoch: u64) -> Result<SignerSet, ContractError> {
    let version = SIGNER_SET_BY_START
        .range(
            storage,
            None,
            Some(Bound::inclusive(epoch)),
            Order::Descending,
        )
        .next()
        .transpose()?
        .map(|(_, version)| version)
        // Version 1 starts at epoch 0, so some version always governs.
        .unwrap_or(1);
    load_signer_set(storage, version)
}

/// Loads one version.
pub fn load_signer_set(storage: &dyn Storage, version: u32) -> Result<SignerSet, ContractError> {
    SIGNER_SETS
        .may_load(storage, version)?
        .ok_or(ContractError::UnknownSignerSetVersion { version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_outside_the_rule_are_rejected_with_their_values() {
        for (threshold, members) in [(0, 4), (1, 4), (5, 4), (2, 6), (1, 3)] {
            assert_eq!(
                validate_threshold(threshold, members),
                Err(ContractError::InvalidThreshold { threshold, members })
            );
        }
        assert_eq!(validate_threshold(4, 4), Ok(()));
    }
}

//! Validation of signer sets and thresholds, and lookup of the version in force for an epoch.

use std::collections::BTreeSet;

use cosmwasm_std::{Api, Order, Storage};
use cw_storage_plus::Bound;

use crate::error::ContractError;
use crate::msg::{Member, MemberInput};
use crate::records::PUBKEY_LEN;
use crate::state::{SIGNER_SET_BY_START, SIGNER_SETS, SignerSet};

/// Most members a signer set may have (signer indices fit in a u16, and gas stays bounded).
pub const MAX_MEMBERS: usize = 256;
/// Longest api_url or p2p_multiaddr accepted.
pub const MAX_ENDPOINT_LEN: usize = 256;

/// The default threshold `floor(2n/3) + 1`: the smallest t with 3t > n. It tolerates
/// f = floor((n-1)/3) faulty members both ways: t > f means every certified block was checked by
/// an honest member, and t <= n - f keeps epochs live with f members down. A higher t buys
/// nothing in safety and costs liveness.
pub fn default_threshold(members: usize) -> u32 {
    (2 * members / 3 + 1) as u32
}

/// Checks `3t > n` and `1 <= t <= n`.
pub fn validate_threshold(threshold: u32, members: usize) -> Result<(), ContractError> {
    let t = threshold as usize;
    if t == 0 || t > members || 3 * t <= members {
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
    if members.is_empty() || members.len() > MAX_MEMBERS {
        return Err(invalid(format!(
            "needs 1 to {MAX_MEMBERS} members, got {}",
            members.len()
        )));
    }
    let threshold = threshold.unwrap_or_else(|| default_threshold(members.len()));
    validate_threshold(threshold, members.len())?;

    let mut keys = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    let mut validated = Vec::with_capacity(members.len());
    for (index, member) in members.into_iter().enumerate() {
        let member = validate_member(api, index, member)?;
        if !keys.insert(member.ed25519_pubkey.to_vec()) {
            return Err(invalid(format!("member {index} repeats an ed25519 key")));
        }
        if !addresses.insert(member.address.clone()) {
            return Err(invalid(format!(
                "member {index} repeats address {}",
                member.address
            )));
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
        return Err(invalid(format!(
            "member {index}: ed25519 key is {} bytes, expected {PUBKEY_LEN}",
            member.ed25519_pubkey.len()
        )));
    }
    let address = api
        .addr_validate(&member.address)
        .map_err(|err| invalid(format!("member {index}: address: {err}")))?;
    let api_url_ok =
        member.api_url.starts_with("http://") || member.api_url.starts_with("https://");
    if !api_url_ok || member.api_url.len() > MAX_ENDPOINT_LEN {
        return Err(invalid(format!(
            "member {index}: api_url must be an http(s) URL of at most {MAX_ENDPOINT_LEN} bytes"
        )));
    }
    if !member.p2p_multiaddr.starts_with('/') || member.p2p_multiaddr.len() > MAX_ENDPOINT_LEN {
        return Err(invalid(format!(
            "member {index}: p2p_multiaddr must be a multiaddress (starting with '/') of at most {MAX_ENDPOINT_LEN} bytes"
        )));
    }
    Ok(Member {
        ed25519_pubkey: member.ed25519_pubkey,
        address,
        api_url: member.api_url,
        p2p_multiaddr: member.p2p_multiaddr,
    })
}

fn invalid(reason: String) -> ContractError {
    ContractError::InvalidSignerSet { reason }
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
    fn default_threshold_is_two_thirds_plus_one() {
        let expected = [
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 3),
            (7, 5),
            (10, 7),
            (100, 67),
            (256, 171),
        ];
        for (members, threshold) in expected {
            assert_eq!(default_threshold(members), threshold, "n = {members}");
            validate_threshold(threshold, members).unwrap();
        }
    }

    #[test]
    fn thresholds_outside_the_rule_are_rejected() {
        for (threshold, members) in [(0, 4), (1, 4), (5, 4), (2, 6), (1, 3)] {
            let err = validate_threshold(threshold, members).unwrap_err();
            assert!(
                matches!(err, ContractError::InvalidThreshold { threshold: t, members: n } if t == threshold && n == members),
                "{err}"
            );
        }
        validate_threshold(4, 4).unwrap();
    }
}
